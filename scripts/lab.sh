#!/usr/bin/env bash
# Installs labchat with every extra (the panels, the terminal client, highlighting) and opens the
# tutorials in JupyterLab. Arguments go on to `jupyter lab` (e.g. --no-browser, --port 9999).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python.sh
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[all]"
ROOT_OK=()
[ "$(id -u)" -ne 0 ] || ROOT_OK=(--allow-root)  # JupyterLab refuses root unless told it is meant
exec "$PYTHON" -m jupyter lab "${ROOT_OK[@]}" notebooks/00-Index.ipynb "$@"
