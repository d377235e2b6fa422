"""toxsieve pipelines: pure stage logic (one module per stage) and the thin Beam shell around it.

``stages/`` what is decided, ``io/`` reading and writing, ``runtime/`` how a run executes, ``cli/``
the ``toxsieve`` command; ``config.py`` and ``document.py`` are shared by all four.
"""
