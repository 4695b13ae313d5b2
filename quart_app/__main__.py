"""``python -m quart_app`` runs the ``storywriter`` command."""

from __future__ import annotations

from quart_app.cli import main

raise SystemExit(main())
