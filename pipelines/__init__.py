"""toxsieve pipelines: pure stage logic (one module per stage) and the thin Beam shell around it."""
