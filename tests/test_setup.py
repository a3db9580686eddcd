"""The pip pins (constraints.txt), the conda file and pyproject's ranges agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if match := re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def _conda() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(
        item["pip"] for item in environment["dependencies"] if isinstance(item, dict)
    )
    return _pins(pip_section)


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    return [Requirement(text) for text in project["dependencies"] + sum(extras, [])]


def test_conda_pins_equal_the_pip_pins() -> None:
    constraints, conda = _constraints(), _conda()
    assert conda, "environment.yml lists no pinned pip packages"
    differ = {name: (pin, constraints.get(name)) for name, pin in conda.items()}
    assert {n: v for n, v in differ.items() if v[0] != v[1]} == {}


def test_every_declared_dependency_is_pinned_in_both_files() -> None:
    constraints, conda = _constraints(), _conda()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in constraints, f"{name} is not pinned in constraints.txt"
        assert name in conda, f"{name} is not pinned in environment.yml"
        pin = constraints[name].split("+")[0]
        assert requirement.specifier.contains(pin), f"{name}=={pin} outside {requirement}"


def test_conda_file_asks_for_python_3_11() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]


def test_license_is_an_spdx_expression() -> None:
    # A TOML table here makes setuptools warn on every install (deprecated by PEP 639).
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]  # reads SPDX strings
