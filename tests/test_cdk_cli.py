"""The real CDK CLI (cdk.json's app command, the CLI's own context) synthesizes the REST and WebSocket flavours, one
queue type each; cfn-lint finds no error in what it wrote. The HTTP flavour goes through the CLI in
test_fresh_install.py (`make synth`), and every variant's own suite runs cfn-lint on its in-process synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE

# cfn-lint's exit status is a bitmask: 2 error, 4 warning, 8 informational; 1 means cfn-lint itself failed.
CFN_LINT_ACCEPTED_BITS = 4 | 8


def cdk_cli() -> str:
    cli = Path(os.environ.get("CDK_CLI", ".cache/cdk-cli/node_modules/.bin/cdk"))
    cli = cli if cli.is_absolute() else TEMPLATE / cli
    assert cli.exists(), f"CDK CLI not installed at {cli}: run `make install`"
    return str(cli)


CLI_VARIANTS = [{"api_flavour": "rest", "queue_type": "fifo"}, {"api_flavour": "websocket"}]


@pytest.mark.parametrize("overrides", CLI_VARIANTS, ids=lambda o: "-".join(o.values()) or "defaults")
def test_cdk_synth_with_the_cli_then_cfn_lint(cookies, overrides):
    project = cookies.bake(extra_context=overrides).project_path
    fifo = overrides.get("queue_type") == "fifo"
    bin_dir = str(Path(sys.executable).parent)  # cdk.json runs `python3 app.py`: this venv's python
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    synth = subprocess.run(
        [cdk_cli(), "synth", "--quiet", "--no-notices"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert synth.returncode == 0, synth.stdout[-3000:] + synth.stderr[-3000:]
    template_path = project / "cdk.out" / "async-api-dev-queue-stack.template.json"
    resources = json.loads(template_path.read_text())["Resources"]
    suffix = ".fifo" if fifo else ""
    assert {r["Properties"].get("QueueName") for r in resources.values() if r["Type"] == "AWS::SQS::Queue"} == {
        f"async-api-dev-queue{suffix}",
        f"async-api-dev-dlq{suffix}",
    }
    flavour = overrides.get("api_flavour", "http")
    api_names = {r["Properties"].get("Name") for r in resources.values() if r["Type"].startswith("AWS::ApiGateway")}
    assert f"async-api-dev-{flavour}-api" in api_names
    lint = subprocess.run(
        [str(Path(bin_dir) / "cfn-lint"), str(template_path)], capture_output=True, text=True, timeout=300
    )
    assert lint.returncode & ~CFN_LINT_ACCEPTED_BITS == 0, lint.stdout + lint.stderr  # no error, no crash
