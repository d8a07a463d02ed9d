"""Files → store: reading exports, mapping their columns, checking, pseudonymising and appending.

One module per job: ``readers`` (CSV, Parquet, XES), ``mapping`` (source columns →
canonical ones), ``cells`` (parsing), ``ids`` (keyed visit and recipient ids),
``overlaps`` (the staff-overlap check), ``known`` (the idempotence index),
``report`` (the import report and quarantine), ``strict`` (``--strict``), and one
module per import kind: ``visits``, ``events``, ``recipients`` (decisions and stays).
"""
