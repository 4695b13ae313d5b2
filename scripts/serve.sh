#!/usr/bin/env bash
# Install (first run only) and serve on http://127.0.0.1:5600 with hypercorn.toml.
# With no configuration the embedded model answers; see README.md for STORYWRITER_CONFIG.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/hypercorn -c hypercorn.toml "quart_app:create_app()" "$@"
