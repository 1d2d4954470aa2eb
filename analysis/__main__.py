"""``python -m analysis``: see analysis/core/cli.py. Needs no database and no Django."""

from analysis.core.cli import main

raise SystemExit(main())
