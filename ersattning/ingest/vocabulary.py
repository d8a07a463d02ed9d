"""The names planning and case systems give columns and values, in Swedish and English, and the canonical
column or value each means: what ``ersattning inspect`` recognises (docs/mapping.md lists them).

Names are compared after :func:`normal`: lower case, a unit in brackets and punctuation taken off,
whitespace collapsed (``Planerad tid (min)`` → ``planerad tid``; ``Giltig fr.o.m.`` → ``giltig from``).
A name not listed here is left unmapped and said so; nothing is guessed from a part of a name.
"""

from __future__ import annotations

import re

_BRACKETS = re.compile(r"[\(\[][^\)\]]*[\)\]]")
_PUNCTUATION = re.compile(r"[._:;,\-/]+")
_SPACE = re.compile(r"\s+")


def normal(name: str) -> str:
    """A header or value as compared here: lower case, no bracketed unit, no punctuation, single spaces."""
    text = _BRACKETS.sub(" ", name.lower())
    text = text.replace("fr.o.m", "from").replace("t.o.m", "tom").replace("fr o m", "from").replace("t o m", "tom")
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def _names(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {normal(name): canonical for canonical, names in table.items() for name in (canonical, *names)}


_RECIPIENT = ("personnummer", "pnr", "personnr", "brukare", "brukar id", "brukarid", "brukare personnummer", "kund", "kund id", "kundid",
              "klient", "klient id", "omsorgstagare", "client", "clientid", "client id", "recipient id")  # fmt: skip

HEADERS: dict[str, dict[str, str]] = {
    "visits": _names({
        "recipient": _RECIPIENT,
        "provider": ("utförare", "utförarenhet", "utförarnamn", "leverantör", "anordnare", "provider code"),
        "visit_id": ("besöks id", "besöksid", "besök id", "besöksnummer", "besök", "insats id", "id", "visit id", "visitid"),
        "category": ("insats", "insatstyp", "insatskategori", "tjänst", "aktivitet", "category", "task", "tasktype", "task type", "service"),
        "team": ("team", "arbetslag", "grupp", "hemtjänstgrupp"),
        "planned_start": ("planerad start", "planerad starttid", "planerat från", "planerad från", "planned start", "starttime", "start time"),
        "planned_end": ("planerat slut", "planerad slut", "planerad sluttid", "planerat till", "planned end", "endtime", "end time"),
        "planned_duration": ("planerad tid", "planerad längd", "planerade minuter", "planerad omfattning", "planned duration", "planned minutes"),
        "actual_start": ("utförd start", "utförd starttid", "faktisk start", "registrerad start", "verklig start", "actual start"),
        "actual_end": ("utfört slut", "utförd slut", "utförd sluttid", "faktiskt slut", "registrerat slut", "verkligt slut", "actual end"),
        "actual_duration": ("utförd tid", "utförd längd", "utförda minuter", "faktisk tid", "registrerad tid", "verklig tid", "actual duration", "actual minutes"),
        "staff": ("personal", "medarbetare", "utförd av", "vårdbiträde", "undersköterska", "resurs", "staff", "caregiver", "plannedcaregiver", "planned caregiver"),
        "status": ("status", "utfall", "besöksstatus", "visit status"),
        "cancelled_at": ("avbokad", "avbokningstid", "avbokad tid", "avbokad datum", "avbokningsdatum", "cancelled at"),
        "registration": ("registrering", "registreringssätt", "registreringstyp", "registration"),
        "recorded_at": ("senast ändrad", "ändrad", "registrerad", "recorded at"),
        "ownership": ("driftsform", "regi", "ägarform"),
    }),  # fmt: skip
    "decisions": _names({
        "recipient": _RECIPIENT,
        "decision_id": ("beslut", "beslut id", "beslutsid", "beslutsnummer", "beslutsnr", "ärende", "ärendenummer", "decision id"),
        "provider": ("utförare", "vald utförare", "leverantör", "provider code"),
        "category": ("insats", "insatstyp", "beviljad insats", "tjänst", "category"),
        "granted": ("beviljad tid", "beviljade timmar", "beviljad omfattning", "omfattning", "beviljat", "granted", "granted hours", "granted minutes"),
        "per": ("enhet", "period", "per", "tidsenhet"),
        "valid_from": ("giltig from", "giltig från", "från", "from", "beslut från", "startdatum", "valid from"),
        "valid_to": ("giltig tom", "giltig till", "till", "tom", "beslut till", "slutdatum", "valid to"),
        "area": ("område", "geografi", "area"),
        "birth_year": ("födelseår", "birth year"),
        "recorded_at": ("senast ändrad", "ändrad", "registrerad", "recorded at"),
    }),  # fmt: skip
    "stays": _names({
        "recipient": _RECIPIENT,
        "stay_id": ("vistelse id", "vistelseid", "vistelsenummer", "stay id"),
        "kind": ("typ", "vistelsetyp", "vistelse", "orsak", "kind"),
        "start": ("från", "start", "startdatum", "inskriven", "inskrivningsdatum", "from"),
        "end": ("till", "slut", "slutdatum", "utskriven", "utskrivningsdatum", "to"),
        "recorded_at": ("senast ändrad", "ändrad", "registrerad", "recorded at"),
    }),  # fmt: skip
    "providers": _names({
        "code": ("utförarkod", "utförar id", "kod", "code", "id"),
        "name": ("utförare", "namn", "utförarnamn", "leverantör", "anordnare", "name"),
        "ownership": ("driftsform", "regi", "ägarform", "drift", "ownership"),
        "teams": ("team", "arbetslag", "grupper"),
        "area": ("område", "geografi", "area"),
        "recorded_at": ("senast ändrad", "ändrad", "registrerad", "recorded at"),
    }),  # fmt: skip
    "events": _names({
        "case": ("case:concept:name", "ärende", "case", "case id", "caseid"),
        "activity": ("concept:name", "aktivitet", "activity"),
        "timestamp": ("time:timestamp", "tidpunkt", "tid", "timestamp", "time"),
        "lifecycle": ("lifecycle:transition", "livscykel", "händelse", "lifecycle"),
        "resource": ("org:resource", "personal", "resurs", "resource"),
        "duration": ("längd", "minuter", "duration"),
        "recipient": _RECIPIENT,
        "provider": ("utförare", "provider code"),
        "team": ("team", "arbetslag"),
        "registration": ("registrering", "registration"),
    }),  # fmt: skip
}
"""kind → normal header name → canonical column."""


def _values(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {normal(v): canonical for canonical, values in table.items() for v in values}


VALUES: dict[str, dict[str, str]] = {
    "category": _values({
        # not listed, as their meaning differs between municipalities: tillsyn (a home-care visit, or the alarm team's
        # night check), hemtjänst, dubbelbemanning (the second staff's own row, in some exports)
        "personal_care": ("personlig omvårdnad", "omvårdnad", "personlig hygien", "hygien", "dusch", "påklädning", "toalettbesök", "personal care"),
        "cleaning": ("städning", "städ", "storstädning", "cleaning"),
        "laundry": ("tvätt", "tvättning", "klädvård", "laundry"),
        "shopping": ("inköp", "handling", "ärenden", "inköp och ärenden", "shopping"),
        "escort": ("ledsagning", "följeslagning", "escort"),
        "other_service": ("service", "övrig service", "måltid", "matdistribution", "matlåda", "disk", "other service"),
    }),  # fmt: skip
    "status": _values({
        "performed": ("utförd", "utfört", "genomförd", "genomfört", "klar", "performed", "done", "completed"),
        "cancelled_by_recipient": ("avbokad av brukare", "avbokad av kund", "avbokad av brukaren", "brukare avbokat", "kund avbokat", "avbokad brukare"),
        "cancelled_by_provider": ("avbokad av utförare", "avbokad av personal", "avbokad av utföraren", "utförare avbokat", "avbokad utförare"),
        "missed": ("ej utförd", "missad", "uteblivet", "uteblivet besök", "missed"),
        "planned": ("planerad", "ej påbörjad", "planned"),
    }),  # fmt: skip
    "ownership": _values({
        "municipal": ("kommunal", "kommunen", "egen regi", "kommunal regi", "offentlig", "municipal"),
        "private": ("privat", "privat utförare", "privat regi", "extern", "extern utförare", "enskild", "lov", "private"),
    }),  # fmt: skip
    "registration": _values({
        "mobile": ("mobil", "mobilapp", "app", "telefon", "mobile"),
        "nfc": ("nfc", "tagg", "nyckeltagg", "nfc tagg"),
        "manual": ("manuell", "manuellt", "efterregistrerad", "manuell efterregistrerad", "manuell registrering", "manual"),
    }),  # fmt: skip
    "kind": _values({
        "hospital": ("sjukhus", "sjukhusvistelse", "slutenvård", "hospital"),
        "short_term": ("korttid", "korttidsboende", "korttidsvistelse", "växelvård", "short term"),
    }),  # fmt: skip
    "area": _values({"urban": ("tätort", "stad", "urban"), "rural": ("landsbygd", "glesbygd", "rural")}),
}
"""canonical column → normal source value → canonical value."""

BREAKS = {normal(v) for v in ("rast", "egen rast", "lunch", "lunchrast", "paus", "restid", "möte", "utbildning", "administration", "break")}
"""Category values that are not visits but staff time (skipped and counted by a proposed ``skip:`` rule)."""

PER_UNITS: dict[str, tuple[str, str]] = {
    normal(text): (unit, per)
    for texts, unit, per in (
        (("timmar per månad", "tim per mån", "tim/mån", "h/mån", "timmar/månad", "h per månad", "hours per month"), "decimal_hours", "month"),
        (("timmar per vecka", "tim per v", "tim/v", "h/vecka", "timmar/vecka", "hours per week"), "decimal_hours", "week"),
        (("minuter per månad", "min per mån", "min/mån", "minutes per month"), "minutes", "month"),
        (("minuter per vecka", "min per v", "min/v", "minutes per week"), "minutes", "week"),
    )
    for text in texts
}
"""A decision's unit cell (``timmar per månad``) → (unit of the granted time, per)."""

HOURS_HINTS = ("(h)", "(tim)", "(timmar)", "timmar", "(hours)", "hours", "(tim.)")
MINUTES_HINTS = ("(min)", "(minuter)", "minuter", "(minutes)", "minutes", "(min.)")
