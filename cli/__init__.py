"""The ``ersattning`` command line (installed as the ``ersattning_cli`` package)."""
