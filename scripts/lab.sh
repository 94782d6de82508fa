#!/usr/bin/env bash
# Installs labchat with its Jupyter extras and opens the tutorials in JupyterLab.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[all]"
exec python3 -m jupyter lab notebooks/00-Index.ipynb "$@"
