"""Scenario files: bundled ones load, mistakes name file, line and key."""

from __future__ import annotations

import json
import textwrap

import pytest

from ersattning.models import PerformedTime
from ersattning.scenario import bundled_scenarios, json_schema, load_scenario
from ersattning.yamlconf import ConfigError


def test_bundled_scenarios_load_and_every_parameter_is_sourced_or_an_assumption():
    names = set(bundled_scenarios())
    assert {"default", "solna", "karlskrona"} <= names
    for name in names:
        sc = load_scenario(name)
        kinds = {m.kind for _, m in sc.models}
        assert sc.spec.baseline in [e.name for e, _ in sc.models]
        for entry, model in sc.models:
            for pname, p in model.parameters().items():
                if p.dated:  # written out in the file, not a code default
                    assert p.source or p.assumption, f"{name}: {entry.name}.{pname} has neither a source nor the assumption label"
        for act, p in sc.spec.admin.minutes_per_act.items():
            assert p.source or p.assumption, f"{name}: admin.minutes_per_act.{act}"
        assert len(sc.sha256) == 64
        if name == "default":
            assert kinds == {"performed_time", "granted_time", "time_budget", "trust_based"}


def _write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


BASE = """
name: test
period: {start: 2024-01, end: 2024-03}
baseline: a
models:
  - name: a
    kind: performed_time
    params:
      rates: {personal_care: 464, service: 382}
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60}
"""


def test_a_minimal_scenario(tmp_path):
    sc = load_scenario(_write(tmp_path, BASE))
    assert isinstance(sc.model("a"), PerformedTime)
    assert sc.months() == 3


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("      rates: {personal_care: 464, service: 382}", "      rates: {personal_care: 464, service: 382}\n      roundng_minutes: 5"), "s.yaml:9: models[0].params.roundng_minutes: unknown key"),
        (("      rates: {personal_care: 464, service: 382}", "      rates: {personal_care: 464}"), "s.yaml:8: models[0].params.rates.service: required key is missing"),
        (("    kind: performed_time", "    kind: per_minute"), "s.yaml:6: models[0].kind: unknown model kind 'per_minute'"),
        (("baseline: a", "baseline: b"), "s.yaml:3: baseline: 'b' is not one of the models (a)"),
        (("period: {start: 2024-01, end: 2024-03}", "period: {start: 2024-1, end: 2024-03}"), "s.yaml:2: period.start: Value error, expected a month, YYYY-MM"),
        (("name: test", "name: test\ncolour: blue"), "s.yaml:2: colour: unknown key"),
        (("  hourly_cost: 420", "  hourly_cost: lots"), "s.yaml:10: admin.hourly_cost"),
        (("correction: 10, ", ""), "admin.minutes_per_act: no minutes for 'correction', which model 'a' requires"),
        (("    kind: performed_time", "    kind: mypkg.nothere:Model"), "s.yaml:6: models[0].kind: unknown model kind 'mypkg.nothere:Model'"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path, change, expected):
    old, new = change
    assert old in BASE
    path = _write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert expected in str(err.value).replace(str(tmp_path) + "/", "")


def test_several_problems_at_once_sorted_by_line(tmp_path):
    text = BASE.replace("baseline: a", "baseline: zz").replace("      rates: {personal_care: 464, service: 382}", "      rates: {personal_care: 464, service: 382}\n      bogus: 1")
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, text))
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and ":3: baseline" in lines[0] and ":9: models[0].params.bogus" in lines[1]


def test_third_party_models_load_by_import_path_when_their_module_is_allowed(tmp_path, monkeypatch):
    pkg = tmp_path / "mymodels.py"
    pkg.write_text(textwrap.dedent("""
        import numpy as np
        from typing import ClassVar
        from ersattning.models import ReimbursementModel, Settlement

        class PerRecipientMonth(ReimbursementModel):
            kind: ClassVar[str] = "per_recipient_month"
            amount: float

            def settle(self, ctx):
                return Settlement(name="", kind=self.kind, ctx=ctx, month={"fixed": np.full(len(ctx.rm), self.amount)})
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    text = BASE.replace("models:\n", "models:\n  - name: mine\n    kind: mymodels:PerRecipientMonth\n    params: {amount: 100}\n")
    with pytest.raises(ConfigError, match="unknown model kind 'mymodels:PerRecipientMonth'"):
        load_scenario(_write(tmp_path, text))  # not a plugin, not allowed: refused
    sc = load_scenario(_write(tmp_path, text), allow_plugins=["mymodels"])  # as --allow-plugin mymodels does
    assert sc.model("mine").amount == 100


def test_json_schema_describes_each_bundled_model():
    schema = json_schema()
    json.dumps(schema)
    variants = schema["properties"]["models"]["items"]["anyOf"]
    kinds = [v["properties"]["kind"].get("const") for v in variants]
    assert {"performed_time", "granted_time", "time_budget", "trust_based"} <= set(kinds)
    assert "PerformedTime" in schema["$defs"] and schema["$defs"]["ScenarioFile"] if "ScenarioFile" in schema["$defs"] else True
    assert schema["additionalProperties"] is False


def test_a_missing_scenario_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: cannot read the file: No such file or directory"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no bundled scenario of that name"):
        load_scenario("nonexistent")
