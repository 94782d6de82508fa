"""ipytest set up for the notebooks: ``%%ipytest`` cells run real pytest on the learner's code.

Why ipytest: a learner reads real pytest output, from the tool professionals use
on their own code, and a passing check prints only dots, the same on every run.
The rule it keeps: a failing test prints its report and never stops the notebook
(``raise_on_error=False``), and a machine without ipytest says how to get it.
"""

from __future__ import annotations

import os

# pytest pads '[100%]' to the terminal's width, which a kernel has none of: pin it, so a passing
# check prints the same on every machine.
WIDTH = "80"

# -qq: dots only; no colour codes in stored outputs; no .pytest_cache beside the notebook.
ADDOPTS = ["-qq", "--color=no", "-p", "no:cacheprovider"]


def use_ipytest() -> bool:
    """Configure ipytest for this kernel; False (and a line saying what to install) without it."""
    try:
        import ipytest
    except ImportError:
        print(
            "not yet: ipytest is not installed; hint: pip install ipytest (or pip install labchat[jupyter])"
        )
        return False
    os.environ["COLUMNS"] = WIDTH
    ipytest.autoconfig(raise_on_error=False, addopts=ADDOPTS)
    return True
