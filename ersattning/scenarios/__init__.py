"""Bundled scenario files (installed as the ``ersattning.scenarios`` package)."""
