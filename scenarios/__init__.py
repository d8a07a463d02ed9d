"""Bundled scenario files (installed as the ``ersattning_scenarios`` package)."""
