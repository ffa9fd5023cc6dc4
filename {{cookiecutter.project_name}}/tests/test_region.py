"""No AWS region configured: every command that talks to AWS stops at once with one line (no traceback, no call to
AWS, no deploy): make preflight, make deploy, make redrive, and the Quick start's bootstrap command. The region is
what botocore and the CDK CLI read: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT
from ops.preflight import NO_REGION

ACCOUNT = "123456789012"


def executable(path: Path, script: str) -> None:
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def regionless(tmp_path) -> dict[str, str]:
    """An environment with no region anywhere one is looked for: no AWS variables, empty config and credentials files;
    and on the PATH an `npx` that only records its arguments (a deploy or bootstrap that starts is seen)."""
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    tools = tmp_path / "tools"
    tools.mkdir()
    executable(tools / "npx", f'#!/bin/sh\necho "$@" >> {tmp_path / "npx-calls"}\n')
    outer = ("AWS_", "CDK_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # nor the flags of a `make test` around this one
    env = {name: value for name, value in os.environ.items() if not name.startswith(outer)}
    return env | {
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
    }


def npx_calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "npx-calls"
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize("tool", ["ops.preflight", "ops.redrive"])
def test_each_tool_stops_with_one_line_and_no_traceback(regionless, tool):
    run = subprocess.run(
        [sys.executable, "-m", tool], cwd=PROJECT, env=regionless, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.endswith(NO_REGION)


@pytest.mark.parametrize("tool", ["ops.preflight", "ops.redrive"])
def test_a_profile_that_does_not_exist_is_one_line_too(regionless, tool):
    env = regionless | {"AWS_PROFILE": "nowhere", "AWS_REGION": "eu-west-1"}
    run = subprocess.run([sys.executable, "-m", tool], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert "(nowhere) could not be found" in line


@pytest.fixture
def installed_venv(tmp_path) -> Path:
    """A VENV for make whose python is this one, marked installed: the targets run without `make install`."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    executable(bin_dir / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / ".installed").touch()  # newer than pyproject.toml
    return bin_dir.parent


@pytest.mark.parametrize("target", ["preflight", "deploy", "redrive"])
def test_make_stops_before_anything_reaches_aws(regionless, installed_venv, tmp_path, target):
    run = subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={installed_venv}"],
        cwd=PROJECT,
        env=regionless,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    tool_lines = [line for line in run.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert len(tool_lines) == 1 and tool_lines[0].endswith(NO_REGION), run.stderr
    assert npx_calls(tmp_path) == []  # `make deploy` never reached the CDK CLI


def bootstrap_block() -> str:
    """The Quick start's shell block that sets the region and bootstraps the account."""
    readme = (PROJECT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    [block] = [block for block in re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL) if " bootstrap " in block]
    return block


@pytest.fixture
def aws_cli(regionless, tmp_path) -> dict[str, str]:
    """A stand-in `aws`: the caller's account, and the profile's region from PROFILE_REGION (`aws configure get
    region` prints nothing and fails when the profile has none, as the real one does)."""
    tools = Path(regionless["PATH"].split(os.pathsep)[0])
    executable(
        tools / "aws",
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        '  "configure get") [ -n "$PROFILE_REGION" ] || exit 1; echo "$PROFILE_REGION" ;;\n'
        f'  "sts get-caller-identity") echo {ACCOUNT} ;;\n'
        "esac\n",
    )
    return regionless


@pytest.mark.parametrize(
    ("settings", "region"),
    [
        ({"AWS_REGION": "eu-west-1", "PROFILE_REGION": "us-west-2"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "eu-north-1", "PROFILE_REGION": "us-west-2"}, "eu-north-1"),
        ({"PROFILE_REGION": "eu-central-1"}, "eu-central-1"),
    ],
)
def test_the_quick_start_bootstraps_the_region_it_deploys_to(aws_cli, tmp_path, settings, region):
    run = subprocess.run(["bash", "-c", bootstrap_block()], env=aws_cli | settings, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    [call] = npx_calls(tmp_path)
    assert call.endswith(f" bootstrap aws://{ACCOUNT}/{region}")


def test_the_quick_start_stops_before_bootstrapping_without_a_region(aws_cli, tmp_path):
    run = subprocess.run(["bash", "-c", bootstrap_block()], env=aws_cli, capture_output=True, text=True)
    assert run.returncode != 0
    [line] = run.stderr.splitlines()
    assert line.endswith(NO_REGION)
    assert npx_calls(tmp_path) == []  # not `bootstrap aws://<account>/`
