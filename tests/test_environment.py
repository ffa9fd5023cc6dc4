"""The template's venv runs the baked projects' tests, so it must hold exactly their pins."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version

import yaml
from packaging.requirements import Requirement

from conftest import TEMPLATE


def generated_pins(cookies) -> list[str]:
    project = tomllib.loads((cookies.bake().project_path / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def test_this_venv_satisfies_every_pin_of_the_generated_project(cookies):
    for pin in map(Requirement, generated_pins(cookies)):
        assert pin.specifier.contains(version(pin.name), prereleases=True), f"{pin} vs installed {version(pin.name)}"


def test_the_template_pins_the_same_versions_as_the_generated_project(cookies):
    template = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert set(generated_pins(cookies)) <= set(template)


def test_the_template_code_is_lint_clean():
    # hooks/ and tests/ only: the project template holds unrendered Jinja (baked projects are linted instead).
    for lint in (("check", "hooks", "tests"), ("format", "--check", "hooks", "tests")):
        run = subprocess.run([sys.executable, "-m", "ruff", *lint], cwd=TEMPLATE, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout


def test_the_pre_commit_hooks_pin_the_ruff_of_the_generated_project(cookies):
    project = cookies.bake().project_path
    dev = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    [ruff] = [pin for pin in dev if pin.startswith("ruff==")]
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    pinned = {
        dependency
        for hook in hooks
        if hook["entry"].startswith("ruff ")
        for dependency in hook["additional_dependencies"]
    }
    assert pinned == {ruff}
