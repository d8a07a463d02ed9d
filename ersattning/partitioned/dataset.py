"""The projection split by recipient: a Parquet dataset of P partitions beside the projection cache.

Each recipient goes to one partition (a hash of its id into P buckets), with all its visits (in
the projection's order), its recipient row, decisions, stays and provider choices; every partition
gets all the providers. Categorical columns are stored as codes, their categories once for the
whole dataset, so that codes (teams, staff, providers) mean the same in every partition and a
partition's settlement context numbers the providers as the region's does. The dataset is written
to a temporary directory and renamed into place (a kill never leaves half a dataset), named by
the store position and P, and reused while the store is unchanged (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ersattning import projection
from ersattning.projection import Projection
from ersattning.store import Store

#: visits per partition the automatic choice of P aims at (a partition's settlement then peaks well under 1 GB)
VISITS_PER_PARTITION = 1_000_000
#: tables split by recipient (providers go whole to every partition)
RECIPIENT_TABLES = ("recipients", "decisions", "stays", "provider_choices")
META = "meta.json"


class DatasetError(RuntimeError):
    """A partitioned projection that cannot be read (say which path and why)."""


def partition_count(visits: int, per_partition: int = VISITS_PER_PARTITION) -> int:
    """P for a region of ``visits``: about ``per_partition`` visits each, at least one."""
    return max(1, -(-int(visits) // per_partition))


def bucket_of(ids: pd.Index | np.ndarray | pd.Series, partitions: int) -> np.ndarray:
    """The partition of each recipient id (a stable 64-bit hash of the id, modulo P)."""
    values = np.asarray(ids, dtype=object).astype(str)
    return (pd.util.hash_array(values) % np.uint64(partitions)).astype(np.int64)


@dataclass(frozen=True)
class Dataset:
    """A written partitioned projection: where it is and what it holds."""

    path: Path
    partitions: int
    position: int
    store_id: str
    visits: list[int]  # visits per partition

    def partition_path(self, i: int) -> Path:
        return self.path / f"part-{i:04d}"


def dataset_path(store: Store, position: int, partitions: int) -> Path | None:
    """Where the dataset of ``store`` at ``position`` in ``partitions`` goes (None: the store has no cache directory)."""
    base = store.projection_dir()
    return None if base is None else Path(base) / "partitions" / f"position-{position}-p{partitions}"


def open_dataset(path: Path | str) -> Dataset:
    """The dataset at ``path`` (DatasetError when it is not one)."""
    path = Path(path)
    try:
        meta = json.loads((path / META).read_text())
        return Dataset(path, int(meta["partitions"]), int(meta["position"]), str(meta["store_id"]), [int(n) for n in meta["visits"]])
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"{path} is not a readable partitioned projection ({e.__class__.__name__}: {e}); is the path shared with the workers?") from e


def existing_dataset(store: Store, position: int) -> Dataset | None:
    """A dataset of ``store`` already written at ``position`` (any P), or None."""
    base = dataset_path(store, position, 1)
    if base is None or not base.parent.is_dir():
        return None
    for path in sorted(base.parent.glob(f"position-{position}-p*")):
        if (path / META).exists():
            return open_dataset(path)
    return None


def ensure_dataset(store: Store, partitions: int | None = None, *, workdir: Path | None = None, proj: Projection | None = None) -> Dataset:
    """The store's partitioned projection at its current position, written when missing.

    ``partitions``: P (None: from the visit count, ``partition_count``). A store with no cache
    directory (memory://) writes it under ``workdir`` (a temporary directory when None). ``proj``:
    the store's projection at its current position, when the caller has it already.
    """
    position = store.position()
    if partitions is not None:
        path = dataset_path(store, position, partitions)
        if path is not None and (path / META).exists():
            return open_dataset(path)
    elif proj is None and (found := existing_dataset(store, position)) is not None:
        return found
    proj = proj if proj is not None else projection.load(store)
    p = partitions or partition_count(len(proj.visits))
    path = dataset_path(store, int(proj.position), p)
    if path is None:
        path = Path(workdir or tempfile.mkdtemp(prefix="ersattning-partitions-")) / f"position-{proj.position}-p{p}"
    if (path / META).exists():
        return open_dataset(path)
    return write_dataset(proj, path, p)


def _global_provider_ids(proj: Projection) -> list[str]:
    """The providers in the order build_context numbers them on the whole projection."""
    named = [proj.providers["provider"].astype(str), pd.Series(proj.visits["provider"].cat.categories, dtype=str), proj.provider_choices["provider"].astype(str)]
    return [str(p) for p in pd.unique(pd.concat(named, ignore_index=True))]


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    """One table as Parquet, with its pandas dtypes in the schema's metadata (Parquet keeps seconds as milliseconds).

    Uncompressed (dictionary and run-length encodings only): every compare reads every partition, and
    decompressing took a quarter of the read (a region-year partition: 126 → 96 ms, 19.5 → 22.1 MB)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dtypes = json.dumps({str(c): str(frame[c].dtype) for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)})
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), b"ersattning.dtypes": dtypes.encode()}), path, compression="none")


def _read_table(path: Path) -> pd.DataFrame:
    """A table ``_write_table`` wrote, in the dtypes it had."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    dtypes = json.loads((table.schema.metadata or {}).get(b"ersattning.dtypes", b"{}"))
    for c, dtype in dtypes.items():
        if c in frame and str(frame[c].dtype) != dtype:
            frame[c] = frame[c].astype(dtype)
    return frame


def write_dataset(proj: Projection, path: Path, partitions: int) -> Dataset:
    """Write ``proj`` as ``partitions`` recipient partitions at ``path`` (atomically: a temporary directory renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        visits = proj.visits
        categorical = [c for c in visits.columns if isinstance(visits[c].dtype, pd.CategoricalDtype)]
        categories = {c: visits[c].cat.categories for c in categorical}
        categories["provider"] = pd.Index(_global_provider_ids(proj))
        (tmp / "categories").mkdir()
        for c, cats in categories.items():
            _write_table(pd.DataFrame({"category": pd.Series(cats)}), tmp / "categories" / f"{c}.parquet")
        _write_table(proj.providers, tmp / "providers.parquet")
        # the recipient's partition, by its category (a recipient without visits still has one)
        recipient_cats = categories["recipient"]
        cat_bucket = bucket_of(recipient_cats, partitions)
        codes = {c: visits[c].cat.codes.to_numpy() for c in categorical}
        codes["provider"] = pd.Index(categories["provider"]).get_indexer(visits["provider"].cat.categories.astype(str))[codes["provider"]]
        codes["provider"][visits["provider"].cat.codes.to_numpy() < 0] = -1
        plain = visits.drop(columns=categorical)
        v_bucket = cat_bucket[codes["recipient"]]
        tables = {name: getattr(proj, name) for name in RECIPIENT_TABLES}
        t_bucket = {name: bucket_of(t["recipient"], partitions) if len(t) else np.zeros(0, dtype=np.int64) for name, t in tables.items()}
        counts = []
        # Parquet encoding lets go of the interpreter lock: partitions are written on threads while the next is cut
        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="ersattning-partition") as writers:
            written = []
            for i in range(partitions):
                part = tmp / f"part-{i:04d}"
                part.mkdir()
                rows = np.flatnonzero(v_bucket == i)
                frame = plain.iloc[rows].reset_index(drop=True)
                for c in categorical:
                    frame[c] = codes[c][rows].astype(np.int32)
                # the partition's recipients, in the region's order, coded among themselves
                mine = np.flatnonzero(cat_bucket == i)
                recode = np.full(len(recipient_cats), -1, dtype=np.int32)
                recode[mine] = np.arange(len(mine), dtype=np.int32)
                frame["recipient"] = recode[codes["recipient"][rows]]
                written.append(writers.submit(_write_table, pd.DataFrame({"category": pd.Series(recipient_cats[mine])}), part / "recipient_categories.parquet"))
                written.append(writers.submit(_write_table, frame, part / "visits.parquet"))
                for name, t in tables.items():
                    written.append(writers.submit(_write_table, t[t_bucket[name] == i].reset_index(drop=True), part / f"{name}.parquet"))
                counts.append(int(len(rows)))
                while len(written) > 4 * (len(tables) + 2):  # at most a few partitions' frames wait in memory
                    written.pop(0).result()
            for w in written:
                w.result()
        meta = {"partitions": partitions, "position": int(proj.position), "store_id": proj.store_id, "visits": counts, "categorical": categorical, "columns": [str(c) for c in visits.columns],
                "category_dtypes": {c: str(cats.dtype) for c, cats in categories.items()}}
        (tmp / META).write_text(json.dumps(meta))
        try:
            tmp.rename(path)
        except OSError:
            if not (path / META).exists():  # another process wrote it first: theirs is as good
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_dataset(path)


def _categories(path: Path, dtypes: dict[str, str], name: str) -> pd.Index:
    """The categories in ``path`` (a Parquet file of one column), in the dtype they had."""
    values = pd.read_parquet(path)["category"]
    return pd.Index(values.astype(dtypes[name]) if name in dtypes else values)


def read_partition(path: Path | str, i: int) -> Projection:
    """Partition ``i`` of the dataset at ``path`` as a Projection (the worker reads it itself)."""
    ds = open_dataset(path)
    part = ds.partition_path(i)
    try:
        meta = json.loads((ds.path / META).read_text())
        frame = _read_table(part / "visits.parquet")
        for c in meta["categorical"]:
            where = part / "recipient_categories.parquet" if c == "recipient" else ds.path / "categories" / f"{c}.parquet"
            cats = _categories(where, meta.get("category_dtypes", {}), c)
            frame[c] = pd.Categorical.from_codes(frame[c].to_numpy(), categories=cats)
        visits = frame[[*_column_order(ds.path, frame.columns)]]
        tables = {name: _read_table(part / f"{name}.parquet") for name in RECIPIENT_TABLES}
        providers = _read_table(ds.path / "providers.parquet")
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise DatasetError(f"cannot read partition {i} of {ds.path} ({e.__class__.__name__}: {e})") from e
    return Projection(
        visits, tables["recipients"], tables["decisions"], tables["stays"], providers, tables["provider_choices"],
        ds.position, None, ds.store_id, pd.DataFrame({"key_hi": np.zeros(0, np.uint64), "key_lo": np.zeros(0, np.uint64)}),
    )  # fmt: skip


def _column_order(path: Path, columns: pd.Index) -> list[str]:
    order = json.loads((path / META).read_text()).get("columns")
    return list(order) if order else list(columns)
