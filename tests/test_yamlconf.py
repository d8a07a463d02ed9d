"""Every mistake in a scenario file must name the file, the line and the key.

Expected line numbers are counted by hand from the YAML text in each test, so
a change in how lines are found shows up here as a wrong number.
"""

from __future__ import annotations

import datetime
import pickle
import textwrap
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ersattning.yamlconf import ConfigError, format_problem, load_yaml, validate


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: int
    cap: float = 0.0


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: Params


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    start: datetime.date
    models: list[Model]


VALID = """\
title: Baseline 2025
start: 2025-01-01
models:
  - name: hourly
    params:
      rate: 450
  - name: visit
    params:
      rate: 120
      cap: 9000
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def only_problem(excinfo: pytest.ExceptionInfo[ConfigError]) -> tuple[str, int | None, str, str]:
    assert len(excinfo.value.problems) == 1, excinfo.value.problems
    return excinfo.value.problems[0]


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    scenario = validate(Scenario, path)
    assert isinstance(scenario, Scenario)
    assert scenario.start == datetime.date(2025, 1, 1)
    assert [m.params.rate for m in scenario.models] == [450, 120]
    assert scenario.models[1].params.cap == 9000.0


def test_load_yaml_gives_safe_load_data_and_key_lines(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    data, lines = load_yaml(path)
    assert data["start"] == datetime.date(2025, 1, 1)
    assert lines[()] == 1
    assert lines[("title",)] == 1
    assert lines[("models",)] == 3
    assert lines[("models", 0)] == 4
    assert lines[("models", 0, "params", "rate")] == 6
    assert lines[("models", 1)] == 7
    assert lines[("models", 1, "params", "cap")] == 10


def test_unknown_key_in_second_list_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        title: Baseline
        start: 2025-01-01
        models:
          - name: hourly
            params:
              rate: 450
          - name: visit
            params:
              rate: 120
              bogus: 1
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    assert only_problem(excinfo) == (str(path), 10, "models[1].params.bogus", "unknown key")
    assert str(excinfo.value) == f"{path}:10: models[1].params.bogus: unknown key"


def test_missing_required_key_points_at_enclosing_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        title: Baseline
        start: 2025-01-01
        models:
          - name: hourly
            params:
              cap: 100
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    assert only_problem(excinfo) == (str(path), 5, "models[0].params.rate", "required key is missing")


def test_missing_top_level_key_points_at_line_1(tmp_path: Path) -> None:
    path = write(tmp_path, "start: 2025-01-01\nmodels: []\n")
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    assert only_problem(excinfo) == (str(path), 1, "title", "required key is missing")


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        title: Baseline
        start: 2025-01-01
        models:
          - name: hourly
            params:
              rate: four hundred
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    file, line, key, message = only_problem(excinfo)
    assert (file, line, key) == (str(path), 6, "models[0].params.rate")
    assert "valid integer" in message


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        title: Baseline
        start: 2025-01-01
        models:
          - name: hourly
            params: [450
          - name: visit
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    file, line, key, message = only_problem(excinfo)
    # The flow sequence opened on line 5 is still open when line 6 starts a block item.
    assert (file, line, key) == (str(path), 6, "")
    assert "line 5" in message
    assert str(excinfo.value).startswith(f"{path}:6: ")


def test_bad_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "title: Baseline\n  start: 2025-01-01\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    assert only_problem(excinfo)[1] == 2


def test_duplicate_key_names_second_occurrence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        title: Baseline
        start: 2025-01-01
        models:
          - name: hourly
            params:
              rate: 450
              cap: 10
              rate: 500
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    file, line, key, message = only_problem(excinfo)
    assert (file, line, key) == (str(path), 8, "models[0].params.rate")
    assert "duplicate" in message and "line 6" in message


def test_merge_key_override_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults: &defaults
          rate: 450
          cap: 10
        params:
          <<: *defaults
          rate: 500
        """,
    )
    data, lines = load_yaml(path)
    assert data["params"] == {"rate": 500, "cap": 10}
    assert lines[("params", "rate")] == 6
    assert lines[("params", "cap")] == 3


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    file, line, key, message = only_problem(excinfo)
    assert (file, line, key) == (str(path), None, "")
    assert str(excinfo.value).startswith(f"{path}: cannot read")


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- title: Baseline\n- title: Other\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    file, line, key, message = only_problem(excinfo)
    assert (file, line, key) == (str(path), 1, "")
    assert "mapping" in message and "list" in message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    assert "empty" in only_problem(excinfo)[3]


def test_impossible_date_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "title: Baseline\nstart: 2025-13-01\nmodels: []\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    file, line, key, _message = only_problem(excinfo)
    assert (line, key) == (2, "start")


def test_several_problems_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        start: 2025-01-01
        models:
          - name: hourly
            params:
              rate: lots
          - name: visit
            extra: true
            params:
              rate: 120
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        validate(Scenario, path)
    problems = excinfo.value.problems
    assert [(line, key) for _file, line, key, _message in problems] == [
        (1, "title"),
        (5, "models[0].params.rate"),
        (7, "models[1].extra"),
    ]
    text_lines = str(excinfo.value).splitlines()
    assert text_lines == [
        f"{path}:1: title: required key is missing",
        f"{path}:5: models[0].params.rate: {problems[1][3]}",
        f"{path}:7: models[1].extra: unknown key",
    ]


class Flat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["flat"]
    amount: int


class Hourly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hourly"]
    rate: int


class Tariffs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tariffs: list[Annotated[Flat | Hourly, Field(discriminator="kind")]]


def test_union_tags_in_loc_are_left_out_of_key_and_line_lookup(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        tariffs:
          - kind: flat
            amount: 10
          - kind: hourly
            rate: many
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        validate(Tariffs, path)
    _file, line, key, _message = only_problem(excinfo)
    assert (line, key) == (5, "tariffs[1].rate")


def test_format_problem() -> None:
    assert format_problem("a.yaml", 3, "x.y", "bad") == "a.yaml:3: x.y: bad"
    assert format_problem("a.yaml", None, "x", "bad") == "a.yaml: x: bad"
    assert format_problem("a.yaml", 3, "", "bad") == "a.yaml:3: bad"
    assert format_problem("a.yaml", None, "", "bad") == "a.yaml: bad"


def test_config_error_pickles() -> None:
    error = ConfigError([("a.yaml", 2, "x", "bad")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == "a.yaml:2: x: bad"
