"""Every option combination bakes, each baked project's own test suite passes (synth, cdk-nag, cfn-lint) and so do
its pre-commit hooks (`make lint`), and the security scanner finds exactly what the project's README says it
accepts."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import PROD_LIKE, VARIANTS, run_in_project, run_in_project_env

# The default answers are baked, installed, linted, tested and scanned from scratch by test_fresh_install.py (with
# the project's own venv and Makefile): running that suite here too would only repeat it.
BAKED_HERE = {name: answers for name, answers in VARIANTS.items() if answers}


@pytest.mark.parametrize("overrides", BAKED_HERE.values(), ids=BAKED_HERE.keys())
def test_variant_bakes_and_its_own_suite_passes(cookies, tmp_path, overrides):
    result = cookies.bake(extra_context=overrides)
    assert result.exit_code == 0, result.exception
    cdk_out = tmp_path / "cdk.out"
    run = run_in_project_env(
        result.project_path, {"SYNTH_OUTDIR": str(cdk_out)}, "pytest", "-q", "-p", "no:cacheprovider"
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout and " skipped" not in run.stdout
    # `make lint`: the project's pre-commit hooks over every file, once it is a git repository.
    for git in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(git, cwd=result.project_path, check=True)
    run = run_in_project(result.project_path, "pre_commit", "run", "--all-files", "--show-diff-on-failure")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    [template] = cdk_out.glob("*.template.json")
    assert_checkov_finds_what_the_readme_accepts(result.project_path, template)


def assert_checkov_finds_what_the_readme_accepts(project: Path, template: Path) -> None:
    answers = json.loads((project / ".cookiecutter.json").read_text())
    accepted = accepted_checkov_findings((project / "README.md").read_text(), answers)
    assert checkov_findings(template) == accepted


def checkov_findings(template: Path) -> set[str]:
    """The ids of the checks checkov fails on a CloudFormation template (offline: --skip-download)."""
    checkov = os.environ.get("CHECKOV", ".cache/checkov/bin/checkov")
    command = [
        checkov,
        "-f",
        str(template),
        "--framework",
        "cloudformation",
        "-o",
        "json",
        "--quiet",
        "--skip-download",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: some check failed
    report = json.loads(run.stdout)
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] > 0
    return {check["check_id"] for check in report.get("results", {}).get("failed_checks", [])}


ROW = re.compile(r"^\| checkov \| (CKV_AWS_\d+) [^|]*\| ([^|]+) \| ([^|]+) \|", re.MULTILINE)
CONDITION = re.compile(r"(\w+) (!?=) ([\w-]+)")


def holds(when: str, answers: dict) -> bool:
    """A `when` column: `always`, or conditions `key = value` / `key != value` joined by `and`; `stage_kind` is
    prod-like or dev-like, as the generated README promises."""
    if when == "always":
        return True
    facts = answers | {"stage_kind": "prod-like" if answers["stage"] in PROD_LIKE else "dev-like"}
    for condition in when.split(" and "):
        key, operator, value = CONDITION.fullmatch(condition).groups()
        if (facts[key] == value) != (operator == "="):
            return False
    return True


def accepted_checkov_findings(readme: str, answers: dict) -> set[str]:
    """The checkov rows of the README's Security table that apply to these answers (flavours and `when` columns)."""
    accepted = set()
    for check_id, flavours, when in ROW.findall(readme):
        flavours, when = flavours.strip(), when.strip()
        if flavours != "all" and answers["api_flavour"] not in flavours.split(", "):
            continue
        if holds(when, answers):
            accepted.add(check_id)
    assert accepted or not ROW.findall(readme), "no checkov row applies"
    return accepted
