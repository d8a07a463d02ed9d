"""The ``ersattning`` command line (installed as the ``ersattning.cli`` package)."""
