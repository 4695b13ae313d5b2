#!/usr/bin/env bash
# Debian's Chromium for the console's browser test (tests/test_console_browser.py): installed
# with apt-get when it is missing and this runs as root (CI does). The test drives it with
# Playwright's client and downloads no browser; without one it skips, saying why, unless
# STORYWRITER_REQUIRE_BROWSER=1 (.ci/run) makes that a failure.
set -uo pipefail
chromium="${STORYWRITER_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: no Chromium at $chromium and no root apt-get to install it" >&2
  exit 0
fi
echo "browser.sh: installing Debian's chromium for the console's browser test" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >/dev/null; then
  echo "browser.sh: chromium could not be installed" >&2
fi
exit 0
