"""The columnar projection: the store's notification log folded into DataFrames.

Everything that settles or counts runs on these frames, never on event objects.

- ``visits``: one row per visit, the fold of its events (a correction replaces
  the registered times), with categorical and narrow numeric dtypes (about
  50 bytes per visit in memory). Times are Stockholm wall-clock
  ``datetime64[s]``; durations are computed from UTC instants, so DST is right.
- ``recipients``, ``decisions``, ``stays``, ``providers``, ``provider_choices``:
  small tables folded from the recipient and provider events.

Modules: ``decode`` (pages → columns), ``visits`` (the visit fold), ``entities``
(the small tables), ``cache`` (the Parquet cache, ``load`` and ``update``),
``rebuild`` (reading the log, in ranges on every core for a big store), ``feed``
(an import's committed batches into the cache).
"""

from ersattning.projection.cache import Projection, ProjectionCache, load, update
from ersattning.projection.decode import ProjectionError
from ersattning.projection.entities import fold_entities
from ersattning.projection.visits import STATUS, TZ

__all__ = ["STATUS", "TZ", "Projection", "ProjectionCache", "ProjectionError", "fold_entities", "load", "update"]
