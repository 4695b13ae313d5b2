#!/usr/bin/env bash
# Install (first run only), then lint, type-check and run the whole test suite.
# Redis/PostgreSQL tests skip when those servers are absent, unless
# STORYWRITER_REQUIRE_SERVICES=1 (CI), which makes them mandatory; likewise the console's
# browser test without Chromium (scripts/browser.sh installs it) and STORYWRITER_REQUIRE_BROWSER.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/browser.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
