"""Running a curation: the three passes and their assembly, the driver, runners, Beam shells, model execution, progress, locks and bounds."""
