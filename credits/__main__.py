"""Run the operator commands: ``python -m credits --db URL {grant,balance,usage,reconcile}``."""

from __future__ import annotations

from credits.cli import main

raise SystemExit(main())
