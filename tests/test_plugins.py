"""A scenario runs no code by surprise (docs/models.md, "A model outside the package"): a model kind outside the
package is loaded only from an installed plugin (entry-point group ``ersattning.models``) or from a module named
with ``--allow-plugin``; anything else is refused, naming file, line and kind, before any module is imported."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from ersattning.models import UnknownModel, resolve_kind
from tests.test_cli import run

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = """
name: test
period: {start: 2024-03, end: 2024-04}
baseline: a
models:
  - name: a
    kind: performed_time
    params:
      rates: {personal_care: 464, service: 382}
  - name: b
    kind: KIND
    params:
      rates: {personal_care: 464, service: 382}
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60}
"""

PLUGIN = '''
from ersattning.models import PerformedTime


class HomeGrown(PerformedTime):
    """A third party's model: the bundled per-minute rules under its own kind."""

    kind = "home_grown"
'''

#: a module whose import leaves a mark: a scenario must not be able to run it by naming it
SURPRISE = '''
from pathlib import Path

Path(__file__).with_name("MARKER").write_text("imported")

from ersattning.models import PerformedTime


class Model(PerformedTime):
    kind = "surprise"
'''


def _scenario(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(SCENARIO).lstrip("\n").replace("KIND", kind))
    return path


def _installed_plugin(site: Path) -> None:
    """A distribution as pip installs it: its package and a ``*.dist-info`` with ``entry_points.txt`` on the path."""
    (site / "homegrown_models").mkdir(parents=True)
    (site / "homegrown_models" / "__init__.py").write_text(PLUGIN)
    info = site / "homegrown_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: homegrown-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ersattning.models]\nhome_grown = homegrown_models:HomeGrown\n")


def _env(*paths: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), *map(str, paths)])}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    where = tmp_path_factory.mktemp("store")
    url = f"sqlite:///{where / 'region.db'}"
    done = run("synth", "--recipients", "30", "--months", "2", "--start", "2024-03", "--seed", "5", "--store", url)
    assert done.returncode == 0, done.stderr
    return url


@pytest.mark.parametrize("kind", ["home_grown", "homegrown_models:HomeGrown"])
def test_a_plugin_model_registered_under_the_entry_point_group_settles_end_to_end(tmp_path, store, kind):
    site = tmp_path / "site"
    _installed_plugin(site)
    path = _scenario(tmp_path, kind)
    checked = run("validate", str(path), env=_env(site))
    assert checked.returncode == 0, checked.stderr
    done = run("compare", str(path), "--store", store, "--format", "json", env=_env(site))
    assert done.returncode == 0, done.stderr
    models = {m["name"]: m for m in json.loads(done.stdout)["models"]}
    assert models["b"]["kind"] == "home_grown"
    # the plugin applies the bundled per-minute rules at the same rates: it pays what model a pays, to the öre
    assert models["b"]["cost_sek"] == models["a"]["cost_sek"] > 0
    assert models["b"]["components"] == models["a"]["components"]


def test_without_the_plugin_installed_its_kind_is_refused(tmp_path):
    path = _scenario(tmp_path, "home_grown")
    done = run("validate", str(path), env=_env())
    assert done.returncode == 2
    assert f"{path}:10: models[1].kind: unknown model kind 'home_grown'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["validate"], ["compare", "--format", "json"], ["sweep", "--vary", "models.b.rates.personal_care=400..500/2"], ["explain", "--visit", "x"]])
def test_a_scenario_naming_a_module_on_the_path_is_refused_before_it_is_imported(tmp_path, store, command):
    code = tmp_path / "code"
    code.mkdir()
    (code / "surprise.py").write_text(SURPRISE)
    path = _scenario(tmp_path, "surprise:Model")
    done = run(*command, str(path), "--store", store, env=_env(code))
    assert done.returncode == 2, done.stderr
    assert not (code / "MARKER").exists()  # its top-level code never ran
    line = next(x for x in done.stderr.splitlines() if "models[1].kind" in x)
    assert line.startswith(f"ersattning: error: {path}:10: models[1].kind: unknown model kind 'surprise:Model'")
    assert "nothing was imported" in line
    assert "entry-point group 'ersattning.models'" in line and "--allow-plugin surprise" in line


def test_the_zen_of_python_stays_unprinted(tmp_path):
    path = _scenario(tmp_path, "this:Model")
    done = run("validate", str(path), env=_env())
    assert done.returncode == 2
    assert "Beautiful is better than ugly" not in done.stdout + done.stderr
    assert f"{path}:10: models[1].kind: unknown model kind 'this:Model'" in done.stderr
    assert "--allow-plugin this" in done.stderr


def test_allow_plugin_lets_the_named_module_in(tmp_path, store):
    code = tmp_path / "code"
    code.mkdir()
    (code / "surprise.py").write_text(SURPRISE)
    path = _scenario(tmp_path, "surprise:Model")
    done = run("validate", str(path), "--allow-plugin", "surprise", env=_env(code))
    assert done.returncode == 0, done.stderr
    assert (code / "MARKER").read_text() == "imported"
    compared = run("compare", str(path), "--store", store, "--format", "json", "--allow-plugin", "surprise", env=_env(code))
    assert compared.returncode == 0, compared.stderr
    models = json.loads(compared.stdout)["models"]
    assert [m["kind"] for m in models] == ["performed_time", "surprise"]
    # settled in partitions, the workers import the allowed module too (it is on their PYTHONPATH) and pay alike
    parted = run("compare", str(path), "--store", store, "--format", "json", "--partitions", "2", "--allow-plugin", "surprise", env=_env(code))
    assert parted.returncode == 0, parted.stderr
    assert [m["cost_sek"] for m in json.loads(parted.stdout)["models"]] == [m["cost_sek"] for m in models]


def test_allow_plugin_lets_in_only_the_module_named_and_its_submodules():
    with pytest.raises(UnknownModel, match="nothing was imported"):
        resolve_kind("surprise_two:Model", allow=["surprise"])  # a module merely sharing the prefix
    with pytest.raises(UnknownModel, match="cannot load model 'ersattning.nothere:Model'"):
        resolve_kind("ersattning.nothere:Model", allow=["ersattning"])  # a submodule of an allowed package is tried
    with pytest.raises(UnknownModel, match="is not a ReimbursementModel"):
        resolve_kind("ersattning.models:Rates", allow=["ersattning.models"])


@pytest.mark.parametrize("command", [["validate"], ["compare"], ["report"], ["explain", "--visit", "x"], ["sweep", "--vary", "models.a.rates.personal_care=400..500/2"]])
def test_a_scenario_never_names_where_to_create_a_store(tmp_path, command):
    path = _scenario(tmp_path, "performed_time")
    target = tmp_path / "elsewhere" / "made.db"
    target.parent.mkdir()
    path.write_text(path.read_text() + f"store: sqlite:///{target}\n")
    done = run(*command, str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"no store at {target}" in done.stderr
    assert list(target.parent.iterdir()) == [] and not (tmp_path / "ersattning.db").exists()
