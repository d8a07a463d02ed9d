"""Files → store: reading exports, mapping their columns, checking, pseudonymising and appending.

One module per job: ``readers`` (a package: CSV, its plain fast path, Parquet, XES),
``mapping`` (source columns → canonical ones), ``cells`` (parsing), ``ids`` (keyed
visit and recipient ids), ``overlaps`` (the staff-overlap check), ``known`` (the
idempotence index, fed by ``projection.known_visits``), ``report`` (the import
report and quarantine), ``options`` (``ImportOptions``, what every import takes),
``strict`` (``--strict``), and one module per import kind: ``visits``, ``events``,
``recipients`` (decisions and stays), ``providers``. See docs/ARCHITECTURE.md.
"""
