"""Deterministic output (issue 25): providers, and so every provider table and the complementary suppression's
tie-break, come in the order of their codes, never in the order a history was imported in."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run

ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
VISITS = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"
PROVIDERS = "code,name,ownership,teams\n"
#: provider → (ownership, recipients): A is small (primary); B and C tie at 6 for the complementary cell
REGION = {"A": ("private", 3), "B": ("municipal", 6), "C": ("municipal", 6), "D": ("municipal", 9)}
SCENARIO = """name: order
period: {start: 2024-03, end: 2024-03}
baseline: per_minute
models:
  - {kind: performed_time, name: per_minute, params: {rates: {personal_care: 485, service: 485, private_personal_care: 516, private_service: 516}}}
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60}
"""


def _rows() -> tuple[list[str], list[str]]:
    """One provider row each, and one performed 30-minute personal-care visit per recipient, in code order."""
    providers = [f"{code},Hemtjänst {code},{ownership},\n" for code, (ownership, _) in REGION.items()]
    visits = []
    for code, (_, n) in REGION.items():
        for i in range(n):
            day = f"2024-03-{4 + i:02d}"
            visits.append(f"{code}{i},{code},V{code}{i},personal_care,{day} 08:00,{day} 08:30,{day} 08:00,{day} 08:30,S{code},performed\n")
    return providers, visits


def _store(tmp_path: Path, name: str, providers: list[str], visits: list[str]) -> str:
    store = f"sqlite:///{tmp_path / (name + '.db')}"
    for kind, header, rows in (("providers", PROVIDERS, providers), ("visits", VISITS, visits)):
        path = tmp_path / f"{name}-{kind}.csv"
        path.write_text(header + "".join(rows), encoding="utf-8")
        done = run("import", str(path), "--kind", kind, "--store", store, env=ENV)
        assert done.returncode == 0, done.stderr
    return store


def _compare(scenario: Path, store: str, *options: str) -> dict:
    done = run("compare", str(scenario), "--store", store, "--format", "json", *options, env=ENV)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    del doc["manifest"]  # names the store
    return doc


def test_the_same_history_imported_in_another_order_gives_the_same_comparison(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    providers, visits = _rows()
    in_order = _store(tmp_path, "in-order", providers, visits)
    # providers registered D, C, B, A; the visits interleaved from the last provider's last recipient backwards
    shuffled = visits[::-1][::2] + visits[::-1][1::2]
    reordered = _store(tmp_path, "reordered", providers[::-1], shuffled)
    first = _compare(scenario, in_order)
    assert _compare(scenario, reordered) == first
    assert _compare(scenario, reordered, "--partitions", "2") == first  # the partitioned path orders them alike
    assert [p["provider"] for p in first["providers"]] == ["A", "B", "C", "D"]
    # A (3 recipients) is hidden; the region's total would give it back, so one more provider is hidden: the smallest,
    # B and C tie at 6, and the tie goes to the first by code, B, whichever was imported first
    assert [(p["provider"], p["suppressed"]) for p in first["providers"]] == [("A", True), ("B", True), ("C", False), ("D", False)]
    shown = {p["provider"]: p["cost_sek"]["per_minute"] for p in first["providers"] if not p["suppressed"]}
    # C: 6 recipients × 0.5 h × 485 SEK/h = 1,455.00; D: 9 × 0.5 × 485 = 2,182.50
    assert shown == {"C": 1455.0, "D": 2182.5}
    # the region: A 3 × 0.5 × 516 = 774.00, B 6 × 0.5 × 485 = 1,455.00, with C and D: 5,866.50
    assert first["models"][0]["cost_sek"] == 5866.5
