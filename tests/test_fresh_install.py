"""The honest path of a user: a baked default project, its own `make install`, `make lint`, `make test` and
`make synth` (what its CI workflow runs), and the security scan of what it synthesized (the default answers' only
run of their suite: test_bake.py runs every other variant's)."""

from __future__ import annotations

import os
import subprocess

import yaml

from test_bake import assert_checkov_finds_what_the_readme_accepts


def test_default_project_installs_tests_and_synthesizes_on_its_own(cookies):
    project = cookies.bake().project_path
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for git in (["git", "init", "-q"], ["git", "add", "-A"]):  # the next steps the post-generation hook prints
        subprocess.run(git, cwd=project, check=True)
    for target in ("install", "lint", "test", "synth"):
        run = subprocess.run(["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"make {target}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    template = project / "cdk.out" / "async-api-dev-queue-stack.template.json"
    # What test_bake.py checks of every other variant: the security scan finds what the README accepts.
    assert_checkov_finds_what_the_readme_accepts(project, template)


def test_the_project_ci_runs_the_make_targets(cookies):
    workflow = yaml.safe_load((cookies.bake().project_path / ".github" / "workflows" / "ci.yml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step]
    assert commands == ["make install", "make lint", "make test", "make synth"]


def test_the_project_ci_deploys_only_once_given_a_role(cookies):
    """Off by default: the deploy job runs for pushes to main after the tests, and only with a role to assume
    (GitHub OIDC: no stored AWS keys), in a protected environment; then it checks the deployed stack."""
    deploy = yaml.safe_load((cookies.bake().project_path / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    deploy = deploy["deploy"]
    assert "vars.AWS_DEPLOY_ROLE_ARN != ''" in deploy["if"] and "refs/heads/main" in deploy["if"]
    assert deploy["needs"] == "test" and deploy["environment"]
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    [credentials] = [step for step in deploy["steps"] if "configure-aws-credentials" in step.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    commands = [step["run"].split()[:2] for step in deploy["steps"] if "run" in step]
    assert commands == [["make", "install"], ["make", "deploy"], ["make", "integration"]]
