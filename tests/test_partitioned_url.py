"""A partitioned projection at an fsspec URL (what workers on other machines read): the same partitions as on disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from ersattning.partitioned.dataset import Dataset, DatasetError, ensure_dataset, open_dataset, read_partition
from ersattning.partitioned.runner import ROOT_ENV, SCHEDULER_ENV
from tests.test_partitioned import region
from tests.test_partitioned_report import EXE


def _same_partitions(a: Dataset, b: Dataset) -> None:
    assert (a.partitions, a.position, a.store_id, a.visits) == (b.partitions, b.position, b.store_id, b.visits)
    for i in range(a.partitions):
        pa_, pb = read_partition(a.location, i), read_partition(b.location, i)
        pd.testing.assert_frame_equal(pa_.visits, pb.visits)
        for name in ("recipients", "decisions", "stays", "providers", "provider_choices"):
            pd.testing.assert_frame_equal(getattr(pa_, name), getattr(pb, name))


def test_a_dataset_under_a_url_holds_what_the_local_one_does(tmp_path: Path) -> None:
    store = region(str(tmp_path), 30, 2, 5)
    local = ensure_dataset(store, 3)
    root = f"file://{tmp_path / 'shared'}"
    remote = ensure_dataset(store, 3, root=root)
    assert remote.location == f"{root}/{store.store_id}/position-{store.position()}-p3"
    with pytest.raises(ValueError, match="not in a local directory"):
        _ = remote.path
    _same_partitions(local, remote)
    assert ensure_dataset(store, root=root).location == remote.location  # found again at the same position, any P


def test_an_unfinished_dataset_at_a_url_is_written_again(tmp_path: Path) -> None:
    store = region(str(tmp_path), 20, 1, 7)
    root = "memory://ersattning-test-unfinished"
    where = f"{root}/{store.store_id}/position-{store.position()}-p2"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{where}/part-0000/visits.parquet", b"half a file")  # a write killed before its meta.json
    with pytest.raises(DatasetError, match="is not a readable partitioned projection"):
        open_dataset(where)
    ds = ensure_dataset(store, 2, root=root)
    _same_partitions(ds, ensure_dataset(store, 2))
    fs.rm(root, recursive=True)


def test_an_unknown_protocol_is_one_clear_error(tmp_path: Path) -> None:
    store = region(str(tmp_path), 5, 1, 1)
    with pytest.raises(DatasetError, match="cannot open nosuchfs://"):
        ensure_dataset(store, 2, root="nosuchfs://bucket/x")


def test_cli_compare_settles_from_a_dataset_at_the_partitions_root(tmp_path: Path) -> None:
    """ERSATTNING_PARTITIONS_ROOT: the dataset (and the region-wide inputs beside it) go under that URL, and the
    compare's JSON is the one-process one."""
    region(str(tmp_path), 25, 2, 3)  # 2024-01 and 2024-02: the period compare settles below
    url = f"sqlite:///{tmp_path / 'region.db'}"
    root = f"file://{tmp_path / 'shared'}"
    env = {k: v for k, v in os.environ.items() if k not in ("ERSATTNING_STORE", SCHEDULER_ENV, ROOT_ENV)}
    docs = {}
    for label, extra, more in (("one", ["--partitions", "0"], {}), ("two", ["--partitions", "2"], {ROOT_ENV: root})):
        done = subprocess.run([*EXE, "compare", "default", "--store", url, "--period", "2024-01..2024-02", "--format", "json", *extra], capture_output=True, text=True, env={**env, **more}, timeout=600)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        doc["manifest"].pop("created_at")
        docs[label] = doc
    assert docs["two"]["models"] == docs["one"]["models"] and docs["two"]["break_even"] == docs["one"]["break_even"]
    written = sorted(p.relative_to(tmp_path / "shared") for p in (tmp_path / "shared").rglob("meta.json"))
    assert len(written) == 1 and written[0].parts[1].endswith("-p2")  # <store id>/position-N-p2/meta.json
    assert not Path(str(tmp_path / "region.db") + ".projection", "partitions").exists()  # not beside the cache
    assert list((tmp_path / "shared").rglob("inputs/*.npz"))  # the trust-based model's region-wide inputs, kept there
