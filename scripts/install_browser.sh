#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium and the Python playwright package.
#
# Usage: scripts/install_browser.sh   (PYTHON defaults to .venv/bin/python)
# Never runs `playwright install`: Playwright drives the system /usr/bin/chromium through
# executable_path, because downloading a browser build is not possible here.
set -euo pipefail

PYTHON="${PYTHON:-.venv/bin/python}"
PLAYWRIGHT_SPEC="${PLAYWRIGHT_SPEC:-playwright>=1.49}"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "installing Debian chromium"
    SUDO=""
    [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium fonts-noto-cjk >/dev/null
fi

if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "installing the playwright Python package"
    "$PYTHON" -m pip install -q --disable-pip-version-check "$PLAYWRIGHT_SPEC"
fi

/usr/bin/chromium --version
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
