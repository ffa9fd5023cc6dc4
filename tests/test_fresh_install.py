"""The honest path of a user: a baked default project, its own `make install`, `make lint`, `make test` and
`make synth` (what its CI workflow runs)."""

from __future__ import annotations

import os
import subprocess

import yaml


def test_default_project_installs_tests_and_synthesizes_on_its_own(cookies):
    project = cookies.bake().project_path
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for git in (["git", "init", "-q"], ["git", "add", "-A"]):  # the next steps the post-generation hook prints
        subprocess.run(git, cwd=project, check=True)
    for target in ("install", "lint", "test", "synth"):
        run = subprocess.run(["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"make {target}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert (project / "cdk.out" / "async-api-dev-queue-stack.template.json").exists()


def test_the_project_ci_runs_the_make_targets(cookies):
    workflow = yaml.safe_load((cookies.bake().project_path / ".github" / "workflows" / "ci.yml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step]
    assert commands == ["make install", "make lint", "make test", "make synth"]
