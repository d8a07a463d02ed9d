"""A partitioned projection at an fsspec URL (what workers on other machines read): the same partitions as on disk."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pandas as pd
import pytest

from ersattning.partitioned.dataset import Dataset, DatasetError, ensure_dataset, open_dataset, read_partition
from tests.test_partitioned import region


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
