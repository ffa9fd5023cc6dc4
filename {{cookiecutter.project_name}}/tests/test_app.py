"""app.py end to end, as `cdk synth -c key=value` runs it: context keys reach the settings, then the stack."""

from __future__ import annotations

import functools
import json
import runpy
import subprocess

import aws_cdk as cdk
import pytest

from conftest import PROJECT

OTHER_STAGE = "qa"
LAYER = "arn:aws:lambda:eu-central-1:123456789012:layer:my-powertools:3"


@pytest.fixture(scope="module")
def with_context(answers, tmp_path_factory) -> dict:
    """The template app.py writes with `-c stage=qa -c powertools_layer_arn=...`. It runs in this process (one synth,
    no second interpreter), so the context reaches its App as the CLI's CDK_CONTEXT_JSON would."""
    outdir = tmp_path_factory.mktemp("cdk.out.context")
    context = {"stage": OTHER_STAGE, "powertools_layer_arn": LAYER}
    app_of_the_cli = functools.partial(cdk.App, outdir=str(outdir), context=context)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cdk, "App", app_of_the_cli)
        for variable in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
            patch.delenv(variable, raising=False)
        runpy.run_path(str(PROJECT / "app.py"), run_name="__main__")
    stack = f"{answers['project_name']}-{OTHER_STAGE}-queue-stack"
    return json.loads((outdir / f"{stack}.template.json").read_text())


def test_another_stage_renames_every_named_resource(with_context, answers):
    names = {
        r["Properties"].get(key)
        for r in with_context["Resources"].values()
        for key in ("QueueName", "FunctionName", "TopicName", "Name")
        if isinstance(r["Properties"].get(key), str)
    }
    suffix = ".fifo" if answers["queue_type"] == "fifo" else ""
    other = f"{answers['project_name']}-{OTHER_STAGE}"
    assert {f"{other}-queue{suffix}", f"{other}-dlq{suffix}", f"{other}-worker", f"{other}-alarms"} <= names
    assert not any(f"-{answers['stage']}-" in name for name in names if answers["stage"] != OTHER_STAGE)


def test_a_layer_given_as_context_replaces_the_ssm_parameter(with_context):
    [function] = [r["Properties"] for r in with_context["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert function["Layers"] == [LAYER]
    defaults = [p.get("Default", "") for p in with_context.get("Parameters", {}).values()]
    assert not [name for name in defaults if name.startswith("/aws/service/powertools/")]


def test_make_hands_stage_and_layer_to_the_cdk_cli_and_to_preflight():
    """`make synth|deploy STAGE=... POWERTOOLS_LAYER_ARN=...` reach the app as the context keys tested above."""
    run = subprocess.run(
        ["make", "-n", "synth", "deploy", f"STAGE={OTHER_STAGE}", f"POWERTOOLS_LAYER_ARN={LAYER}"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.replace("\\\n", " ").splitlines()  # one line per command, continuations joined
    context = f"-c stage={OTHER_STAGE} -c powertools_layer_arn={LAYER}"
    commands = [line for line in lines if "aws-cdk@" in line]
    assert [c.split("aws-cdk@", 1)[1].split()[1] for c in commands] == ["synth", "deploy"]
    assert all(context in command for command in commands)
    [preflight] = [line for line in lines if "ops.preflight" in line]
    assert f"--stage {OTHER_STAGE}" in preflight and f"--powertools-layer-arn {LAYER}" in preflight
