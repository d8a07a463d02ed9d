"""Report labels in Swedish and English, and numbers written the way each language writes them.

Swedish is the default: reports go to Swedish boards and committees. Swedish
writes 1 234 567,8 (a no-break space between thousands, a decimal comma,
``−`` as the minus sign); English writes 1,234,567.8. Domain names stay
English in code; only what a reader sees is translated here.
"""

from __future__ import annotations

import math
from typing import Any

from ersattning.suppression import SUPPRESSED_MARK

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
NBSP = "\u00a0"

LABELS: dict[str, dict[str, str]] = {
    # document
    "title": {"sv": "Jämförelse av ersättningsmodeller för hemtjänst", "en": "Comparison of home-care reimbursement models"},
    "summary": {"sv": "Sammanfattning", "en": "Summary"},
    "comparison": {"sv": "Jämförelsetabell", "en": "Comparison table"},
    "charts": {"sv": "Diagram", "en": "Charts"},
    "providers": {"sv": "Utförare", "en": "Providers"},
    "indicators": {"sv": "Kvalitetsindikatorer", "en": "Quality indicators"},
    "admin": {"sv": "Administrativ börda", "en": "Administrative load"},
    "assumptions": {"sv": "Antaganden och parametrar", "en": "Assumptions and parameters"},
    "manifest": {"sv": "Körningsuppgifter", "en": "Run manifest"},
    "monthly": {"sv": "Kostnad per månad", "en": "Cost per month"},
    "components": {"sv": "Kostnad per komponent", "en": "Cost by component"},
    "baseline": {"sv": "jämförelsemodell", "en": "baseline"},
    "suppressed_note": {
        "sv": f"{SUPPRESSED_MARK} = uppgiften visas inte eftersom den avser färre än 5 personer eller skulle låta en sådan uppgift räknas fram.",
        "en": f"{SUPPRESSED_MARK} = not shown because it concerns fewer than 5 persons or would let such a figure be worked out.",
    },
    "no_suppress_warning": {
        "sv": "VARNING: röjandeskyddet är avstängt. Rapporten kan visa uppgifter om färre än 5 personer och får inte spridas.",
        "en": "WARNING: small-cell suppression is off. This report may show figures about fewer than 5 persons and must not be handed on.",
    },
    "providers_suppressed": {
        "sv": "{n} utförare visas inte: de med färre än 5 brukare och de minsta övriga som behövs för att deras uppgifter inte ska kunna räknas fram ur totalerna.",
        "en": "{n} providers are not shown: those with fewer than 5 recipients, and the smallest others needed so that their figures cannot be worked out from the totals.",
    },
    "assumption_legend": {
        "sv": "Antagande = värdet har ingen angiven källa och är ett antagande att pröva.",
        "en": "Assumption = the value has no stated source and is an assumption to vary.",
    },
    # summary sentences
    "sentence_baseline": {
        "sv": "{label} ({model}) är jämförelsemodell: {cost} för perioden, {admin} administrativa timmar; kontinuitet (median) {continuity} personal per 14 dagar.",
        "en": "{label} ({model}) is the baseline: {cost} for the period, {admin} administrative hours; continuity (median) {continuity} staff per 14 days.",
    },
    "sentence_model": {
        "sv": "{label} ({model}) kostar {cost}, {delta} ({pct}) jämfört med {baseline}, med {admin} administrativa timmar; kontinuitet (median) {continuity} personal per 14 dagar.",
        "en": "{label} ({model}) costs {cost}, {delta} ({pct}) against {baseline}, with {admin} administrative hours; continuity (median) {continuity} staff per 14 days.",
    },
    "scope": {
        "sv": "Scenario {scenario}, perioden {start}–{end}: {recipients} brukare, {recipient_months} brukarmånader, {visits} besök.",
        "en": "Scenario {scenario}, period {start}–{end}: {recipients} recipients, {recipient_months} recipient-months, {visits} visits.",
    },
    # table columns
    "model": {"sv": "Modell", "en": "Model"},
    "label": {"sv": "Benämning", "en": "Label"},
    "kind": {"sv": "Typ", "en": "Kind"},
    "cost_sek": {"sv": "Kostnad (kr)", "en": "Cost (SEK)"},
    "delta_sek": {"sv": "Skillnad mot jämförelsemodell (kr)", "en": "Δ vs baseline (SEK)"},
    "delta_pct": {"sv": "Skillnad (%)", "en": "Δ (%)"},
    "delta_vs": {"sv": "Skillnad mot {baseline} (kr)", "en": "Δ vs {baseline} (SEK)"},
    "cost_per_recipient_month_sek": {"sv": "Kr per brukarmånad", "en": "SEK per recipient-month"},
    "paid_hours": {"sv": "Betalda timmar", "en": "Paid hours"},
    "performed_hours": {"sv": "Utförda timmar", "en": "Performed hours"},
    "granted_hours": {"sv": "Beviljade timmar", "en": "Granted hours"},
    "admin_hours": {"sv": "Administrativa timmar", "en": "Administrative hours"},
    "admin_cost_sek": {"sv": "Administrativ kostnad (kr)", "en": "Administrative cost (SEK)"},
    "provider": {"sv": "Utförare", "en": "Provider"},
    "recipients": {"sv": "Brukare", "en": "Recipients"},
    "month": {"sv": "Månad", "en": "Month"},
    "component": {"sv": "Komponent", "en": "Component"},
    "act": {"sv": "Moment", "en": "Act"},
    "unit": {"sv": "Räknas per", "en": "Counted per"},
    "count": {"sv": "Antal", "en": "Count"},
    "minutes_per_act": {"sv": "Minuter per moment", "en": "Minutes per act"},
    "hours": {"sv": "Timmar", "en": "Hours"},
    "indicator": {"sv": "Indikator", "en": "Indicator"},
    "value": {"sv": "Värde", "en": "Value"},
    "section": {"sv": "Del", "en": "Section"},
    "parameter": {"sv": "Parameter", "en": "Parameter"},
    "valid_from": {"sv": "Gäller från", "en": "Valid from"},
    "source": {"sv": "Källa", "en": "Source"},
    "is_assumption": {"sv": "Antagande", "en": "Assumption"},
    "note": {"sv": "Kommentar", "en": "Note"},
    "key": {"sv": "Uppgift", "en": "Item"},
    "suppressed": {"sv": "Undertryckt", "en": "Suppressed"},
    "yes": {"sv": "ja", "en": "yes"},
    "no": {"sv": "nej", "en": "no"},
    "always": {"sv": "alltid", "en": "always"},
    # charts
    "chart_cost": {"sv": "Kostnad per modell och komponent (Mkr)", "en": "Cost per model by component (MSEK)"},
    "chart_monthly": {"sv": "Kostnad per månad och modell (Mkr)", "en": "Monthly cost per model (MSEK)"},
    "chart_providers": {"sv": "Utförare som vinner och förlorar mest mot {baseline} (%)", "en": "Providers gaining and losing most against {baseline} (%)"},
    "chart_distribution": {"sv": "Fördelning av ersättning per brukarmånad (kr)", "en": "Distribution of payment per recipient-month (SEK)"},
    "chart_admin": {"sv": "Administrativa timmar per moment", "en": "Administrative hours by kind of act"},
    "chart_indicators": {"sv": "Kvalitetsindikatorer per modell", "en": "Quality indicators per model"},
    "msek": {"sv": "Mkr", "en": "MSEK"},
    "sek": {"sv": "kr", "en": "SEK"},
    "h": {"sv": "tim", "en": "h"},
    "recipient_months_axis": {"sv": "Brukarmånader", "en": "Recipient-months"},
    "suppressed_bins": {"sv": "staplar som avser 1–4 brukare, och de som skulle avslöja dem, visas inte", "en": "bars about 1–4 recipients, and those that would give them away, not shown"},
    "no_providers": {"sv": "Inga utförare med minst 5 brukare att visa.", "en": "No providers with at least 5 recipients to show."},
    # manifest keys
    "version": {"sv": "ersattning-version", "en": "ersattning version"},
    "scenario": {"sv": "Scenario", "en": "Scenario"},
    "scenario_path": {"sv": "Scenariofil", "en": "Scenario file"},
    "scenario_sha256": {"sv": "Scenariofilens sha256", "en": "Scenario sha256"},
    "store": {"sv": "Händelselager", "en": "Event store"},
    "store_id": {"sv": "Lagrets id", "en": "Store id"},
    "store_position": {"sv": "Position i lagret", "en": "Store position"},
    "as_of": {"sv": "Känt per", "en": "As of"},
    "period": {"sv": "Period", "en": "Period"},
    "visits": {"sv": "Besök", "en": "Visits"},
    "recipient_months": {"sv": "Brukarmånader", "en": "Recipient-months"},
    "created_at": {"sv": "Skapad", "en": "Created at"},
    "suppression": {"sv": "Röjandeskydd (minst 5 personer)", "en": "Small-cell suppression (at least 5 persons)"},
    "demo": {"sv": "Syntetiska demodata", "en": "Synthetic demo data"},
    "period_from": {"sv": "Perioden från", "en": "Period from"},
    "warnings": {"sv": "Varningar om underlaget", "en": "Warnings about the data"},
    # the checks' findings (ersattning/checks.py, docs/checks.md); codes without a label show the tool's message
    "warning:demo_data": {
        "sv": "Siffrorna kommer från en syntetisk demoregion, inte från verkliga data.",
        "en": "The figures come from a synthetic demo region, not from real data.",
    },
    "warning:decisions_not_covered": {
        "sv": "Månader med besök men utan gällande biståndsbeslut: {value}. Modeller som betalar beviljad tid betalar inget för dem.",
        "en": "Months with visits but no decision in force: {value}. Models that pay granted time pay nothing for them.",
    },
    "warning:out_of_range": {
        "sv": "{figure} är {value}, utanför det rimliga intervallet {expected}. Kontrollera importens enheter och mappning.",
        "en": "{figure} is {value}, outside the plausible range {expected}. Check the import's units and mapping.",
    },
    "warning:out_of_range_hidden": {
        "sv": "{figure} ligger utanför det rimliga intervallet {expected}. Kontrollera importens enheter och mappning.",
        "en": "{figure} is outside the plausible range {expected}. Check the import's units and mapping.",
    },
    "figure:performed_to_granted": {"sv": "Utförd tid i förhållande till beviljad tid", "en": "Performed time over granted time"},
    "figure:visits_per_recipient_day": {"sv": "Utförda besök per brukardag i hemmet", "en": "Performed visits per recipient-day at home"},
    "figure:minutes_per_visit": {"sv": "Utförda minuter per besök", "en": "Performed minutes per visit"},
    "figure:share_double_staffed": {"sv": "Andelen besök med dubbelbemanning", "en": "The share of visits with two staff"},
    "figure:share_night": {"sv": "Andelen besök som börjar 22–07", "en": "The share of visits started 22–07"},
    "figure:share_cancelled": {"sv": "Andelen avbokade besök", "en": "The share of planned visits cancelled"},
    "on": {"sv": "på", "en": "on"},
    "off": {"sv": "AV", "en": "OFF"},
    "language": {"sv": "Språk", "en": "Language"},
    # indicators
    "continuity_median": {"sv": "Personalkontinuitet, median (personal per 14 dagar)", "en": "Staff continuity, median (staff per 14 days)"},
    "continuity_share_above_20": {"sv": "Andel med fler än 20 personal per 14 dagar", "en": "Share with more than 20 staff per 14 days"},
    "continuity_person_windows": {"sv": "Person-perioder i kontinuitetsmåttet", "en": "Person-windows in the continuity measure"},
    "punctuality": {"sv": "Punktlighet (andel besök i tid)", "en": "Punctuality (share of visits on time)"},
    "share_planned_performed": {"sv": "Andel planerade besök som utförts", "en": "Share of planned visits performed"},
    "share_cancelled_by_recipient": {"sv": "Andel avbokade av brukaren", "en": "Share cancelled by the recipient"},
    "share_cancelled_by_provider": {"sv": "Andel inställda av utföraren", "en": "Share cancelled by the provider"},
    "performed_to_granted": {"sv": "Utförd tid / beviljad tid", "en": "Performed / granted time"},
    "visits_per_recipient_day": {"sv": "Besök per brukardag", "en": "Visits per recipient-day"},
    "unpaid_performed_hours": {"sv": "Utförda men obetalda timmar", "en": "Performed but unpaid hours"},
    "paid_not_performed_hours": {"sv": "Betalda men ej utförda timmar", "en": "Paid but not performed hours"},
    "marginal_sek_per_minute": {"sv": "Ersättning för en extra minut (kr)", "en": "Payment for one extra minute (SEK)"},
    "revenue_volatility": {"sv": "Intäktsvariation per utförare (variationskoefficient)", "en": "Provider revenue volatility (coefficient of variation)"},
    # model kinds
    "kind:performed_time": {"sv": "utförd tid", "en": "performed time"},
    "kind:granted_time": {"sv": "beviljad tid", "en": "granted time"},
    "kind:time_budget": {"sv": "ramtid", "en": "time budget"},
    "kind:trust_based": {"sv": "tillitsbaserad", "en": "trust-based"},
    # settlement components
    "component:base": {"sv": "Grundersättning", "en": "Base payment"},
    "component:double_staffing": {"sv": "Dubbelbemanning", "en": "Double staffing"},
    "component:time_uplift": {"sv": "OB-tillägg", "en": "Time uplifts"},
    "component:night_fee": {"sv": "Nattinsatser", "en": "Night fees"},
    "component:cancellation": {"sv": "Sena avbokningar", "en": "Late cancellations"},
    "component:stay": {"sv": "Sjukhusvistelse", "en": "Hospital stays"},
    "component:stay_deduction": {"sv": "Avdrag för vistelse", "en": "Stay deductions"},
    "component:rural": {"sv": "Glesbygdstillägg", "en": "Rural uplift"},
    "component:new_client": {"sv": "Ny brukare", "en": "New clients"},
    "component:budget": {"sv": "Ramtid", "en": "Time budget"},
    "component:fixed": {"sv": "Fast ersättning", "en": "Fixed payment"},
    "component:quality_bonus": {"sv": "Kvalitetsbonus", "en": "Quality bonus"},
    # what an administrative act is counted per (admin.UNITS)
    "unit:start_stop": {"sv": "start och stopp per personal och besök", "en": "start and stop per staff and visit"},
    "unit:correction": {"sv": "korrigering", "en": "correction"},
    "unit:paid_visit": {"sv": "betalt besök", "en": "paid visit"},
    "unit:recipient_month": {"sv": "brukarmånad", "en": "recipient-month"},
    "unit:provider_month": {"sv": "utförarmånad", "en": "provider-month"},
    "unit:team_month": {"sv": "teammånad", "en": "team-month"},
    "unit:decision_change": {"sv": "nytt, ändrat eller avslutat beslut", "en": "decision granted, revised or ended"},
    # sensitivity, sweeps, break-even and uncertainty (ersattning.analysis, docs/models.md)
    "break_even": {"sv": "Nollpunkt (break-even)", "en": "Break-even"},
    "break_even_note": {
        "sv": "Den faktor på modellens priser (timtaxor, avgifter, fasta belopp) vid vilken den kostar lika mycket som {baseline} på samma historik: löst exakt (kostnaden är styckvis linjär i priserna) och kontrollerad med en ny avräkning till öret.",
        "en": "The factor on the model's prices (hourly rates, fees, fixed amounts) at which it costs what {baseline} costs on the same history: solved exactly (cost is piecewise linear in prices) and verified by settling again, to the öre.",
    },
    "current": {"sv": "Som skrivet", "en": "As written"},
    "break_even_value": {"sv": "Nollpunkt", "en": "Break-even value"},
    "delta_at_value_sek": {"sv": "Skillnad vid nollpunkten (kr)", "en": "Δ at the break-even (SEK)"},
    "none": {"sv": "ingen", "en": "none"},
    "sensitivity": {"sv": "Känslighetsanalys", "en": "Sensitivity analysis"},
    "sensitivity_note": {
        "sv": "En parameter i taget till sitt låga och höga värde, allt annat som i scenariot: hur modellens kostnadsskillnad mot {baseline} (och dess administrativa timmar och kontinuitet) ändras, sorterat efter utslag.",
        "en": "One parameter at a time at its low and high end, all else as in the scenario: how the model's cost difference against {baseline} (and its administrative hours and continuity) changes, sorted by swing.",
    },
    "low": {"sv": "Låg", "en": "Low"},
    "high": {"sv": "Hög", "en": "High"},
    "low_source": {"sv": "Källa (låg)", "en": "Source (low)"},
    "high_source": {"sv": "Källa (hög)", "en": "Source (high)"},
    "delta_low_sek": {"sv": "Skillnad vid låg (kr)", "en": "Δ at low (SEK)"},
    "delta_high_sek": {"sv": "Skillnad vid hög (kr)", "en": "Δ at high (SEK)"},
    "change_low_sek": {"sv": "Ändring vid låg (kr)", "en": "Change at low (SEK)"},
    "change_high_sek": {"sv": "Ändring vid hög (kr)", "en": "Change at high (SEK)"},
    "swing_sek": {"sv": "Utslag (kr)", "en": "Swing (SEK)"},
    "admin_hours_change_low": {"sv": "Adm. timmar, ändring vid låg", "en": "Admin hours, change at low"},
    "admin_hours_change_high": {"sv": "Adm. timmar, ändring vid hög", "en": "Admin hours, change at high"},
    "continuity_change_low": {"sv": "Kontinuitet, ändring vid låg", "en": "Continuity, change at low"},
    "continuity_change_high": {"sv": "Kontinuitet, ändring vid hög", "en": "Continuity, change at high"},
    "sweep": {"sv": "Svep", "en": "Sweep"},
    "uncertainty": {"sv": "Osäkerhetsanalys", "en": "Uncertainty analysis"},
    "uncertainty_note": {
        "sv": "{draws} dragningar av parametrarna med fördelning, frö {seed}: median och 90 % intervall, och sannolikheten att modellen är billigare än {baseline}.",
        "en": "{draws} draws of the parameters with a distribution, seed {seed}: median and 90 % interval, and the probability that the model is cheaper than {baseline}.",
    },
    "cost_median_sek": {"sv": "Kostnad, median (kr)", "en": "Cost, median (SEK)"},
    "cost_p05_sek": {"sv": "Kostnad, 5 % (kr)", "en": "Cost, 5th pct (SEK)"},
    "cost_p95_sek": {"sv": "Kostnad, 95 % (kr)", "en": "Cost, 95th pct (SEK)"},
    "delta_median_sek": {"sv": "Skillnad, median (kr)", "en": "Δ, median (SEK)"},
    "delta_p05_sek": {"sv": "Skillnad, 5 % (kr)", "en": "Δ, 5th pct (SEK)"},
    "delta_p95_sek": {"sv": "Skillnad, 95 % (kr)", "en": "Δ, 95th pct (SEK)"},
    "p_cheaper": {"sv": "Sannolikhet billigare", "en": "Probability cheaper"},
    "chart_tornado": {
        "sv": "Känslighet: ändrad kostnadsskillnad mot {baseline} när en parameter går till lågt/högt värde (Mkr)",
        "en": "Sensitivity: change in the cost difference against {baseline} as a parameter goes low/high (MSEK)",
    },
    "chart_sweep": {"sv": "Svep: kostnadsskillnad mot {baseline} (Mkr)", "en": "Sweep: cost difference against {baseline} (MSEK)"},
    "no_sensitivity": {"sv": "Ingen känslighetsanalys i denna rapport (ersattning sensitivity --html).", "en": "No sensitivity analysis in this report (ersattning sensitivity --html)."},
    "no_sweep": {"sv": "Inget svep i denna rapport (ersattning sweep --vary … --html).", "en": "No sweep in this report (ersattning sweep --vary … --html)."},
    "prices": {"sv": "Faktor på modellens priser", "en": "Factor on the model's prices"},
    "tornado_low": {"sv": "lågt värde", "en": "low value"},
    "tornado_high": {"sv": "högt värde", "en": "high value"},
    # administrative acts
    "act:registration": {"sv": "Registrering (start/stopp)", "en": "Registration (start/stop)"},
    "act:correction": {"sv": "Korrigering", "en": "Correction"},
    "act:invoice_line": {"sv": "Fakturarad", "en": "Invoice line"},
    "act:reconciliation": {"sv": "Avstämning", "en": "Reconciliation"},
    "act:decision_follow_up": {"sv": "Uppföljning av beslut", "en": "Decision follow-up"},
    "act:dialogue_meeting": {"sv": "Dialogmöte", "en": "Dialogue meeting"},
}

# Indicators that are shares (shown as per cent).
SHARE_INDICATORS = {"continuity_share_above_20", "punctuality", "share_planned_performed", "share_cancelled_by_recipient", "share_cancelled_by_provider"}


def label(key: str, lang: str, **values: Any) -> str:
    """The label for ``key`` in ``lang`` (the key, without its prefix, when there is none), with values filled in."""
    text = LABELS.get(key, {}).get(lang, key.rpartition(":")[2])
    return text.format(**values) if values else text


def number(x: Any, lang: str, digits: int = 0, *, sign: bool = False) -> str:
    """A number as the language writes it; None/NaN (suppressed or undefined) as the suppression mark, a mark as it is."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return SUPPRESSED_MARK
    text = f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"
    if lang == "sv":
        text = text.replace(",", NBSP).replace(".", ",").replace("-", "\u2212")
    return text


def money(x: Any, lang: str, *, sign: bool = False) -> str:
    """SEK in millions for prose: 126,4 Mkr / 126.4 MSEK; a mark as it is."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return SUPPRESSED_MARK
    return f"{number(x / 1e6, lang, 1, sign=sign)}{NBSP}{label('msek', lang)}"


def percent(x: Any, lang: str, digits: int = 1, *, sign: bool = False) -> str:
    """A value already in per cent: 12,3 % / 12.3 %; a mark as it is."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return SUPPRESSED_MARK
    return f"{number(x, lang, digits, sign=sign)}{NBSP}%"


def warning_text(warning: dict[str, Any], lang: str) -> str:
    """A finding of the checks (compare's ``warnings[]``) as a sentence in ``lang``."""
    code, value = str(warning["code"]), warning.get("value")
    if code.endswith("_out_of_range"):
        figure = code.removesuffix("_out_of_range")
        expected = str(warning.get("expected") or "")
        if lang == "sv":
            expected = expected.replace(".", ",")
        if value is None:
            return label("warning:out_of_range_hidden", lang, figure=label(f"figure:{figure}", lang), expected=expected)
        shown = f"{float(value):.3g}"
        return label("warning:out_of_range", lang, figure=label(f"figure:{figure}", lang), value=shown.replace(".", ",") if lang == "sv" else shown, expected=expected)
    if f"warning:{code}" in LABELS:
        return label(f"warning:{code}", lang, value=value)
    return str(warning["message"])


def parse_number(text: str, lang: str) -> float:
    """Read back what ``number`` wrote (for tests and for checking a rendered report)."""
    t = text.replace(NBSP, "").replace("\u202f", "").replace(" ", "").replace("\u2212", "-")
    t = t.replace(",", ".") if lang == "sv" else t.replace(",", "")
    return float(t)
