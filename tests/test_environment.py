"""environment.yml agrees with pyproject.toml: conda-forge, pip, the project itself, every dependency.

conda cannot be installed on the machines that run these tests, so the file is
checked as data: parsed with PyYAML and compared, requirement by requirement,
with pyproject.toml (read with tomllib, versions compared with packaging).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

# Where conda-forge's package has another name than the one on PyPI.
CONDA_NAMES = {"playwright": "playwright-python", "matplotlib": "matplotlib-base", "redis": "redis-py"}

# Conda packages that are not Python requirements of the project.
CONDA_ONLY = {"python", "pip", "redis-server"}


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def conda_specs(environment: dict) -> dict[str, Requirement]:
    specs: dict[str, Requirement] = {}
    for item in environment["dependencies"]:
        if isinstance(item, str):
            requirement = Requirement(item)
            name = canonicalize_name(requirement.name)
            assert name not in specs, f"{name} is listed twice"
            specs[name] = requirement
    return specs


def project_requirements(project: dict) -> list[Requirement]:
    """Every requirement of the project, its extras included (without labchat's own references)."""
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [r for r in map(Requirement, lines) if canonicalize_name(r.name) != project["name"]]


def test_conda_forge_comes_first_and_defaults_stays_out(environment: dict) -> None:
    channels = environment["channels"]
    assert channels[0] == "conda-forge"
    assert "defaults" not in channels


def test_python_version_matches_requires_python(environment: dict, project: dict) -> None:
    python = conda_specs(environment)["python"]
    assert python.specifier == Requirement(f"python{project['requires-python']}").specifier


def test_pip_is_listed_and_one_pip_section_installs_the_project_with_dev(environment: dict) -> None:
    assert "pip" in conda_specs(environment)
    sections = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    assert len(sections) == 1
    assert sections[0] == ["-e .[dev]"]
    # "." is the folder that holds environment.yml: it must be this project, with a dev extra.
    here = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert here["name"] == "labchat" and "dev" in here["optional-dependencies"]


def test_every_project_requirement_is_in_the_environment_with_the_same_bounds(
    environment: dict, project: dict
) -> None:
    specs = conda_specs(environment)
    requirements = project_requirements(project)
    assert len(requirements) > 10
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in specs, f"{requirement} from pyproject.toml is missing in environment.yml"
        assert specs[conda_name].specifier == requirement.specifier, (
            f"{conda_name}: environment.yml says {specs[conda_name].specifier}, "
            f"pyproject.toml says {requirement.specifier}"
        )


def test_the_environment_adds_nothing_pyproject_does_not_know(environment: dict, project: dict) -> None:
    names = (canonicalize_name(r.name) for r in project_requirements(project))
    known = {CONDA_NAMES.get(name, name) for name in names}
    assert set(conda_specs(environment)) - known == CONDA_ONLY


def test_the_dev_extra_pulls_in_every_other_extra(project: dict) -> None:
    extras = project["optional-dependencies"]
    dev = {canonicalize_name(r.name): r for r in map(Requirement, extras["dev"])}
    assert dev["labchat"].extras == {"all"}
    assert Requirement(extras["all"][0]).extras == set(extras) - {"all", "dev"}
