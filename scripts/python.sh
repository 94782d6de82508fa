# Sourced by the other scripts: sets PYTHON to the interpreter labchat is installed into and run by.
# That is the active virtual environment's, or python3 when pip may install into it; a Python
# the system manages (Debian 12 and later refuse `pip install` into theirs) gets a virtual
# environment in .venv instead, made once, so the scripts never touch the system's packages.
if [ -n "${VIRTUAL_ENV:-}" ]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
elif python3 -c 'import os, sys, sysconfig; sys.exit(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    PYTHON=python3
else
    if [ ! -x .venv/bin/python ]; then
        if ! python3 -m venv .venv 2>/dev/null; then
            rm -rf .venv  # Debian keeps venv's pip apart: python3-venv
            SUDO=""
            [ "$(id -u)" -eq 0 ] || SUDO="sudo"
            $SUDO apt-get install -y -q --no-install-recommends python3-venv
            python3 -m venv .venv
        fi
        echo "labchat: installing into a virtual environment, .venv (activate it with: . .venv/bin/activate)"
    fi
    PYTHON=.venv/bin/python
    PATH="$PWD/.venv/bin:$PATH"  # as activating it would: its console scripts (labchat, jupyter) first
fi
