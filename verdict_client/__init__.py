"""The command-line client of the researcher API: ``verdict`` (see cli.py)."""
