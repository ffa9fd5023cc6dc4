"""A project kept with cruft follows the template: made from an older commit, it updates to HEAD with no conflict
and no rejected hunk, its suite passes, and the user's own files are never rewritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE, run_in_project

# The last commit of the template a CI run landed before cruft support: projects made from it exist.
OLDER = "95ac19c7c2082ad063dfffa21da1fc61843f3834"
GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t"}
GIT |= {"GIT_COMMITTER_EMAIL": "t@example.com"}


def run(*command: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(command), cwd=cwd, env=os.environ | GIT, capture_output=True, text=True, timeout=900)
    assert not check or done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def cruft(*arguments: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "cruft", *arguments, cwd=cwd, check=check)


def head() -> str:
    return run("git", "rev-parse", "HEAD", cwd=TEMPLATE).stdout.strip()


def create(tmp_path: Path, checkout: str) -> Path:
    cruft("create", "--no-input", "--checkout", checkout, "--output-dir", str(tmp_path), str(TEMPLATE), cwd=tmp_path)
    project = tmp_path / "async-api"
    run("git", "init", "-q", cwd=project)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "generated", cwd=project)
    return project


@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Path:
    run("git", "cat-file", "-e", f"{OLDER}^{{commit}}", cwd=TEMPLATE)  # a shallow clone would not have it
    return create(tmp_path_factory.mktemp("cruft"), OLDER)


def test_a_fresh_project_is_up_to_date(tmp_path):
    project = create(tmp_path, head())
    assert cruft("check", cwd=project).returncode == 0


def test_an_older_project_updates_cleanly_and_passes_its_suite(older):
    logic = older / "worker" / "logic.py"
    logic.write_text(logic.read_text() + "\n\nOWNER = 'the user'  # a change of the user's\n")
    run("git", "commit", "-qam", "my logic", cwd=older)
    assert cruft("check", cwd=older, check=False).returncode != 0  # it knows it is behind

    cruft("update", "--skip-apply-ask", "--checkout", head(), cwd=older)
    assert not list(older.rglob("*.rej"))
    conflicted = run("git", "grep", "-l", "-e", "^<<<<<<< ", "-e", "^>>>>>>> ", cwd=older, check=False)
    assert conflicted.stdout == ""
    assert "OWNER = 'the user'" in logic.read_text()
    assert cruft("check", cwd=older).returncode == 0
    # The user's edit is no difference from the template: worker/logic.py is theirs (pyproject's [tool.cruft] skip).
    assert cruft("diff", "--exit-code", cwd=older, check=False).returncode == 0

    suite = run_in_project(older, "pytest", "-q", "-p", "no:cacheprovider")  # as test_bake.py runs a suite
    assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-3000:]
    assert " passed" in suite.stdout and " failed" not in suite.stdout
