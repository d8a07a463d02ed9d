"""The projection split by recipient: a Parquet dataset of P partitions beside the projection cache.

Each recipient goes to one partition (a hash of its id into P buckets), with all its visits (in
the projection's order), its recipient row, decisions, stays and provider choices; every partition
gets all the providers. Categorical columns are stored as codes, their categories once for the
whole dataset, so that codes (teams, staff, providers) mean the same in every partition and a
partition's settlement context numbers the providers as the region's does. The dataset is written
to a temporary directory and renamed into place (a kill never leaves half a dataset), named by
the store position and P, and reused while the store is unchanged (docs/ARCHITECTURE.md).

A dataset lives in a local directory (beside the projection cache; on a shared filesystem for a
cluster) or under an fsspec URL (``s3://bucket/prefix``, ``gcs://…``, any protocol fsspec knows and
whose package is installed) that every worker reads itself. At a URL, where nothing renames a
directory atomically, the partitions are written first and ``meta.json`` last: a dataset without it
is unfinished and is written again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ersattning import projection
from ersattning.checks import Coverage
from ersattning.context import provider_order
from ersattning.files import write_atomic
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


def is_url(location: Path | str) -> bool:
    """Whether ``location`` is an fsspec URL (``s3://…``) rather than a local path."""
    return "://" in str(location)


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem ``location`` is on and its path there (a URL through fsspec, read by Arrow)."""
    if not is_url(location):
        return pafs.LocalFileSystem(), str(Path(location).absolute())
    try:
        import fsspec

        fs, root = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as e:  # an unknown protocol, or its package (s3fs, gcsfs, …) not installed
        raise DatasetError(f"cannot open {location}: {e}") from e
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), str(root).rstrip("/")


def _exists(location: str) -> bool:
    fs, path = _filesystem(location)
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def dataset_file(location: Path | str, *names: str) -> str:
    """A file in the dataset at ``location`` (a directory or URL): ``dataset_file(ds.location, "inputs", "x.npz")``."""
    return "/".join([str(location).rstrip("/"), *names])


def read_file(location: str) -> bytes:
    """The bytes of a file in a dataset, local or at a URL (OSError when it is missing)."""
    fs, path = _filesystem(location)
    with fs.open_input_stream(path) as f:
        return bytes(f.read())


def write_file(location: str, data: bytes) -> None:
    """A file in a dataset written whole or not at all: locally a temporary file renamed; at a URL one upload
    (object stores show an object only once it is complete)."""
    if not is_url(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(location, lambda tmp: tmp.write_bytes(data))
        return
    fs, path = _filesystem(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)


@dataclass(frozen=True)
class Dataset:
    """A written partitioned projection: where it is (a local directory or an fsspec URL) and what it holds."""

    location: str
    partitions: int
    position: int
    store_id: str
    visits: list[int]  # visits per partition
    #: which months the history describes (checks.Coverage as JSON); None in a dataset written before it was kept
    coverage: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        """The local directory (a dataset at a URL has none)."""
        if is_url(self.location):
            raise ValueError(f"the partitioned projection at {self.location} is not in a local directory")
        return Path(self.location)

    def partition_location(self, i: int) -> str:
        return dataset_file(self.location, f"part-{i:04d}")


def dataset_path(store: Store, position: int, partitions: int, root: str | None = None) -> str | None:
    """Where the dataset of ``store`` at ``position`` in ``partitions`` goes: under ``root`` (a directory or URL, by
    store id) or beside the projection cache (None: no root and the store has no cache directory)."""
    name = f"position-{position}-p{partitions}"
    if root:
        return dataset_file(root, store.store_id, name)
    base = store.projection_dir()
    return None if base is None else str(Path(base) / "partitions" / name)


def open_dataset(location: Path | str) -> Dataset:
    """The dataset at ``location`` (DatasetError when it is not one)."""
    return _opened(str(location))[0]


def _opened(where: str) -> tuple[Dataset, dict[str, Any]]:
    """The dataset at ``where`` and its ``meta.json``, read once."""
    try:
        meta = json.loads(read_file(dataset_file(where, META)).decode())
        return Dataset(where, int(meta["partitions"]), int(meta["position"]), str(meta["store_id"]), [int(n) for n in meta["visits"]], meta.get("coverage")), meta
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"{where} is not a readable partitioned projection ({e.__class__.__name__}: {e}); is the path shared with the workers?") from e


def existing_dataset(store: Store, position: int, root: str | None = None) -> Dataset | None:
    """A dataset of ``store`` already written at ``position`` (any P), or None."""
    base = dataset_path(store, position, 1, root)
    if base is None:
        return None
    fs, parent = _filesystem(base.rsplit("/", 1)[0])
    if fs.get_file_info(parent).type != pafs.FileType.Directory:
        return None
    found = fs.get_file_info(pafs.FileSelector(parent))
    for info in sorted(found, key=lambda i: i.base_name):
        if info.base_name.startswith(f"position-{position}-p") and fs.get_file_info(f"{info.path}/{META}").type == pafs.FileType.File:
            return open_dataset(dataset_file(base.rsplit("/", 1)[0], info.base_name))
    return None


def ensure_dataset(store: Store, partitions: int | None = None, *, workdir: Path | None = None, proj: Projection | None = None, root: str | None = None) -> Dataset:
    """The store's partitioned projection at its current position, written when missing.

    ``partitions``: P (None: from the visit count, ``partition_count``). ``root``: a directory or an
    fsspec URL the workers can reach, under which datasets go by store id (None: beside the projection
    cache). A store with no cache directory (memory://) and no root writes it under ``workdir`` (a
    temporary directory when None). ``proj``: the store's projection at its current position, when the
    caller has it already.
    """
    position = store.position()
    if partitions is not None:
        where = dataset_path(store, position, partitions, root)
        if where is not None and _exists(dataset_file(where, META)):
            return open_dataset(where)
    elif proj is None and (found := existing_dataset(store, position, root)) is not None:
        return found
    proj = proj if proj is not None else projection.load(store)
    p = partitions or partition_count(len(proj.visits))
    where = dataset_path(store, int(proj.position), p, root)
    if where is None:
        where = str(Path(workdir or tempfile.mkdtemp(prefix="ersattning-partitions-")) / f"position-{proj.position}-p{p}")
    if _exists(dataset_file(where, META)):
        return open_dataset(where)
    return write_dataset(proj, where, p)


def _global_provider_ids(proj: Projection) -> list[str]:
    """The providers in the order build_context numbers them on the whole projection (by code)."""
    named = [proj.providers["provider"].astype(str), pd.Series(proj.visits["provider"].cat.categories, dtype=str), proj.provider_choices["provider"].astype(str)]
    return provider_order(named)


def _write_table(frame: pd.DataFrame, location: str) -> None:
    """One table as Parquet, with its pandas dtypes in the schema's metadata (Parquet keeps seconds as milliseconds).

    Uncompressed (dictionary and run-length encodings only): every compare reads every partition, and
    decompressing took a quarter of the read (a region-year partition: 126 → 96 ms, 19.5 → 22.1 MB)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dtypes = json.dumps({str(c): str(frame[c].dtype) for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)})
    fs, path = _filesystem(location)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), b"ersattning.dtypes": dtypes.encode()}), path, compression="none", filesystem=fs)


def _read_table(location: str) -> pd.DataFrame:
    """A table ``_write_table`` wrote, in the dtypes it had."""
    fs, path = _filesystem(location)
    table = pq.read_table(path, filesystem=fs)
    frame = table.to_pandas()
    dtypes = json.loads((table.schema.metadata or {}).get(b"ersattning.dtypes", b"{}"))
    for c, dtype in dtypes.items():
        if c in frame and str(frame[c].dtype) != dtype:
            frame[c] = frame[c].astype(dtype)
    return frame


def write_dataset(proj: Projection, location: Path | str, partitions: int) -> Dataset:
    """Write ``proj`` as ``partitions`` recipient partitions at ``location``: a local directory atomically (a temporary
    directory renamed), a URL with ``meta.json`` last (an unfinished one there is removed and written again)."""
    where = str(location)
    if is_url(where):
        fs, path = _filesystem(where)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)  # no meta.json (the caller looked): an unfinished write
        fs.create_dir(path, recursive=True)
        _write_parts(proj, where, partitions)
        return open_dataset(where)
    final = Path(where)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _write_parts(proj, str(tmp), partitions)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / META).exists():  # another process wrote it first: theirs is as good
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_dataset(final)


def _write_parts(proj: Projection, where: str, partitions: int) -> None:
    """The dataset's files under ``where``, ``meta.json`` last."""
    fs, _ = _filesystem(where)
    visits = proj.visits
    categorical = [c for c in visits.columns if isinstance(visits[c].dtype, pd.CategoricalDtype)]
    categories = {c: visits[c].cat.categories for c in categorical}
    categories["provider"] = pd.Index(_global_provider_ids(proj))
    fs.create_dir(_filesystem(dataset_file(where, "categories"))[1], recursive=True)
    for c, cats in categories.items():
        _write_table(pd.DataFrame({"category": pd.Series(cats)}), dataset_file(where, "categories", f"{c}.parquet"))
    _write_table(proj.providers, dataset_file(where, "providers.parquet"))
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
            part = dataset_file(where, f"part-{i:04d}")
            fs.create_dir(_filesystem(part)[1], recursive=True)
            rows = np.flatnonzero(v_bucket == i)
            frame = plain.iloc[rows].reset_index(drop=True)
            for c in categorical:
                frame[c] = codes[c][rows].astype(np.int32)
            # the partition's recipients, in the region's order, coded among themselves
            mine = np.flatnonzero(cat_bucket == i)
            recode = np.full(len(recipient_cats), -1, dtype=np.int32)
            recode[mine] = np.arange(len(mine), dtype=np.int32)
            frame["recipient"] = recode[codes["recipient"][rows]]
            written.append(writers.submit(_write_table, pd.DataFrame({"category": pd.Series(recipient_cats[mine])}), dataset_file(part, "recipient_categories.parquet")))
            written.append(writers.submit(_write_table, frame, dataset_file(part, "visits.parquet")))
            for name, t in tables.items():
                written.append(writers.submit(_write_table, t[t_bucket[name] == i].reset_index(drop=True), dataset_file(part, f"{name}.parquet")))
            counts.append(int(len(rows)))
            while len(written) > 4 * (len(tables) + 2):  # at most a few partitions' frames wait in memory
                written.pop(0).result()
        for w in written:
            w.result()
    meta = {"partitions": partitions, "position": int(proj.position), "store_id": proj.store_id, "visits": counts, "categorical": categorical, "columns": [str(c) for c in visits.columns],
            "category_dtypes": {c: str(cats.dtype) for c, cats in categories.items()}, "coverage": Coverage.of(proj).to_json()}
    with fs.open_output_stream(_filesystem(dataset_file(where, META))[1]) as f:
        f.write(json.dumps(meta).encode())


def _categories(location: str, dtypes: dict[str, str], name: str) -> pd.Index:
    """The categories in ``location`` (a Parquet file of one column), in the dtype they had."""
    fs, path = _filesystem(location)
    values = pq.read_table(path, filesystem=fs).to_pandas()["category"]
    return pd.Index(values.astype(dtypes[name]) if name in dtypes else values)


def read_partition(location: Path | str, i: int) -> Projection:
    """Partition ``i`` of the dataset at ``location`` as a Projection (the worker reads it itself)."""
    ds, meta = _opened(str(location))
    part = ds.partition_location(i)
    try:
        frame = _read_table(dataset_file(part, "visits.parquet"))
        for c in meta["categorical"]:
            where = dataset_file(part, "recipient_categories.parquet") if c == "recipient" else dataset_file(ds.location, "categories", f"{c}.parquet")
            cats = _categories(where, meta.get("category_dtypes", {}), c)
            frame[c] = pd.Categorical.from_codes(frame[c].to_numpy(), categories=cats)
        visits = frame[list(meta.get("columns") or frame.columns)]
        tables = {name: _read_table(dataset_file(part, f"{name}.parquet")) for name in RECIPIENT_TABLES}
        providers = _read_table(dataset_file(ds.location, "providers.parquet"))
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise DatasetError(f"cannot read partition {i} of {ds.location} ({e.__class__.__name__}: {e})") from e
    return Projection(
        visits, tables["recipients"], tables["decisions"], tables["stays"], providers, tables["provider_choices"],
        ds.position, None, ds.store_id, pd.DataFrame({"key_hi": np.zeros(0, np.uint64), "key_lo": np.zeros(0, np.uint64)}),
    )  # fmt: skip
