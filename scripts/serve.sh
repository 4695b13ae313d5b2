#!/usr/bin/env bash
# Install (first run only) and serve on http://127.0.0.1:5600 with hypercorn.toml
# (`storywriter serve`: hypercorn's workers, a dead one replaced; --workers N, --bind ADDR).
# With no configuration the embedded model answers; see README.md for STORYWRITER_CONFIG.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/storywriter serve "$@"
