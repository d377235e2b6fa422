"""The ``toxsieve`` command line (``main.py``) and the commands that read a finished run: audit, export, redecide, rethreshold, models."""
