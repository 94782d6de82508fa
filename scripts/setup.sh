#!/usr/bin/env bash
# Installs everything labchat's tutorials and tests need on a fresh Debian machine:
# Debian's chromium (browser tests) and redis-server (backplane tests, benchmark peer), then the
# package itself with its development extras (into .venv where the system's Python is managed:
# scripts/python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v chromium >/dev/null || ! command -v redis-server >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium redis-server fonts-noto-color-emoji
fi
. scripts/python.sh
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[dev]"
