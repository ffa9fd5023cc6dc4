"""The generated docs (README.md, docs/*.md) describe the project they come with: every `make` target they name is
in its Makefile, every stack output, log group, alarm and resource name they quote is in its synthesized template,
every link resolves, only the chosen auth mode and queue type are documented, and nothing of the template is left
(Jinja, a hard-coded stage).

One variant per flavour; between them both auth modes, both queue types, every queue encryption, the VPC and an
alarm e-mail. Stage `qa` everywhere, so that a hard-coded `dev` shows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DEFAULTS

STAGE = "qa"
PREFIX = f"{DEFAULTS['project_name']}-{STAGE}"
VARIANTS: dict[str, dict[str, str]] = {
    "http": {
        "api_flavour": "http",
        "queue_type": "fifo",
        "queue_encryption": "kms-customer",
        "result_topic": "sns",
        "idempotency": "dynamodb",
    },
    "rest": {
        "api_flavour": "rest",
        "api_auth": "none",
        "queue_encryption": "sqs-managed",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
    },
    "websocket": {"api_flavour": "websocket", "queue_type": "fifo", "worker_vpc": "new"},
}

FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
MAKE_TARGET = re.compile(r"(?<![\w./-])make (?:[A-Z_]+=\S+ )*([a-z][\w-]*)")
MAKEFILE_RULE = re.compile(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", re.MULTILINE)
OUTPUT_KEY = re.compile(r"OutputKey=='(\w+)'|`(\w+Url)`")
LOG_GROUP = re.compile(r"/aws/(?:lambda|apigateway|vpc)/[\w.-]+(?:/[\w.-]+)*")
# A name of this stack: the prefix and at least one more word (`<prefix>-<region>` placeholders do not match).
STACK_NAME = re.compile(rf"(?<![\w.-]){re.escape(PREFIX)}-[a-z0-9][a-z0-9.-]*[a-z0-9]")
ALARM_SUFFIX = re.compile(r"`…-([a-z][a-z-]*[a-z])`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@dataclass
class Docs:
    project: Path
    answers: dict[str, str]
    texts: dict[str, str]  # README.md and docs/*.md, by path relative to the project

    def code(self) -> str:
        """What the docs give as commands, names and values: fenced blocks and inline code."""
        return "\n".join(
            part for text in self.texts.values() for pattern in (FENCED, INLINE) for part in pattern.findall(text)
        )

    def everything(self) -> str:
        return "\n".join(self.texts.values())


def bake(cookies, flavour: str) -> Docs:
    result = cookies.bake(extra_context=VARIANTS[flavour] | {"stage": STAGE})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    paths = [project / "README.md", *sorted((project / "docs").glob("*.md"))]
    return Docs(project, result.context, {p.relative_to(project).as_posix(): p.read_text() for p in paths})


@pytest.fixture(scope="module")
def baked(cookies_session) -> dict[str, Docs]:
    return {flavour: bake(cookies_session, flavour) for flavour in VARIANTS}


def makefile_targets(project: Path) -> set[str]:
    rules = MAKEFILE_RULE.findall((project / "Makefile").read_text())
    return {target for rule in rules for target in rule.split()}


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("flavour", VARIANTS)
def test_no_template_syntax_and_no_other_stage_is_left(baked, flavour):
    for path, text in baked[flavour].texts.items():
        assert not re.findall(r"\{[{%#]", text), path
        assert not re.findall(r"[-/]dev\b", text), f"{path} names the stage dev in a project of stage {STAGE}"


@pytest.mark.parametrize("flavour", VARIANTS)
def test_every_make_target_the_docs_name_is_in_the_makefile(baked, flavour):
    docs = baked[flavour]
    named = set(MAKE_TARGET.findall(docs.code()))
    assert {"install", "test", "deploy", "destroy", "preflight"} <= named  # the pattern finds what is there
    assert named - makefile_targets(docs.project) == set()


def test_the_bootstrap_command_uses_the_makefiles_cdk_cli(baked):
    docs = baked["http"]
    [pinned] = re.findall(r"^CDK_CLI_VERSION :?= (\S+)$", (docs.project / "Makefile").read_text(), re.MULTILINE)
    versions = re.findall(r"aws-cdk@(\S+) bootstrap", docs.texts["README.md"])
    assert versions == [pinned]


@pytest.mark.parametrize("flavour", VARIANTS)
def test_links_and_anchors_resolve(baked, flavour):
    docs = baked[flavour]
    for path, text in docs.texts.items():
        prose = FENCED.sub("", text)  # a `# comment` in a shell block is no heading
        anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", prose, re.MULTILINE)}
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            if file:
                assert (docs.project / path).parent.joinpath(file).resolve().exists(), f"{path}: {target}"
            else:
                assert anchor in anchors, f"{path}: {target}"


@pytest.mark.parametrize("flavour", VARIANTS)
def test_only_the_chosen_auth_mode_and_queue_type_are_documented(baked, flavour):
    docs = baked[flavour]
    text, iam, fifo = docs.everything(), docs.answers["api_auth"] == "iam", docs.answers["queue_type"] == "fifo"
    assert ("(api_auth = iam" in text, "(api_auth = none" in text) == (iam, not iam)
    assert bool(re.search(r"^## FIFO", text, re.MULTILINE)) == fifo
    assert ("X-Message-Group-Id" in text or '{"MessageGroupId"' in text) == fifo  # how a client names its group
    # curl signs with environment variables (the WebSocket client signs with boto3's credentials)
    assert ("aws configure export-credentials" in text) == (iam and flavour != "websocket")


@pytest.mark.parametrize("flavour", ["http", "rest"])
def test_every_call_to_the_deployed_api_is_signed_exactly_when_the_api_wants_it(baked, flavour):
    docs = baked[flavour]
    commands = [line for block in FENCED.findall(docs.everything()) for line in block.replace("\\\n", " ").splitlines()]
    calls = [line for line in commands if line.startswith("curl") and '"$URL"' in line]
    assert calls
    iam = docs.answers["api_auth"] == "iam"
    assert [call for call in calls if ("--aws-sigv4" in call) != iam] == []


def synthesize(projects: dict[str, Path], out: Path) -> dict[str, dict]:
    """`python app.py` in each project at once (the CDK app writes to CDK_OUTDIR): {flavour: template and stacks}.
    Without CDK_DEFAULT_ACCOUNT/REGION the stacks stay environment-agnostic: no AWS call, as in CI."""
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")}
    runs = {
        flavour: subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=project,
            env=env | {"CDK_OUTDIR": str(out / flavour)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flavour, project in projects.items()
    }
    synthesized = {}
    for flavour, run in runs.items():
        stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, f"{flavour}: {stdout[-2000:]}{stderr[-2000:]}"
        manifest = json.loads((out / flavour / "manifest.json").read_text())
        stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
        [stack] = stacks
        template = json.loads((out / flavour / stack["properties"]["templateFile"]).read_text())
        synthesized[flavour] = {"stack_name": stack["properties"].get("stackName"), "template": template}
    return synthesized


def resources(template: dict, kind: str) -> list[dict]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


COUNTS = {"Five": 5, "Six": 6, "Seven": 7, "Eight": 8, "Nine": 9, "Ten": 10}


def test_every_output_log_group_alarm_and_name_the_docs_quote_is_synthesized(baked, tmp_path):
    """One synth per flavour, all three at once: the outputs, log groups, alarms and `<prefix>-...` names the docs
    quote are those of the variant's own template."""
    synthesized = synthesize({flavour: docs.project for flavour, docs in baked.items()}, tmp_path)
    problems = []
    for flavour, docs in baked.items():
        template, stack_name = synthesized[flavour]["template"], synthesized[flavour]["stack_name"]
        text = docs.everything()

        outputs = {key for pair in OUTPUT_KEY.findall(text) for key in pair if key}
        problems += [f"{flavour}: output {o}" for o in sorted(outputs - set(template.get("Outputs", {})))]

        names = [p.get("LogGroupName") for p in resources(template, "AWS::Logs::LogGroup")]
        log_groups = {name for name in names if isinstance(name, str)}  # not the REST execution logs' Fn::Join
        quoted_log_groups = set(LOG_GROUP.findall(text))
        problems += [f"{flavour}: log group {g}" for g in sorted(quoted_log_groups - log_groups)]

        alarms = {p["AlarmName"] for p in resources(template, "AWS::CloudWatch::Alarm")}
        listed = {f"{PREFIX}-{what}" for what in ALARM_SUFFIX.findall(text)}
        problems += [f"{flavour}: alarm {a}" for a in sorted(listed - alarms)]
        problems += [f"{flavour}: alarm {a} is not documented" for a in sorted(alarms - listed)]
        counted = [COUNTS[word] for word in re.findall(r"\b([A-Z][a-z]+) alarms, named", text)]
        problems += [f"{flavour}: {n} alarms said, {len(alarms)} synthesized" for n in counted if n != len(alarms)]
        assert counted, flavour

        known = set(STACK_NAME.findall(json.dumps(template))) | {stack_name}
        quoted = set(STACK_NAME.findall(text))
        problems += [f"{flavour}: name {n}" for n in sorted(quoted - known)]

        # The patterns must find what the docs are known to quote, or the checks above prove nothing.
        expected = {f"/aws/lambda/{PREFIX}-worker", f"/aws/apigateway/{PREFIX}-{flavour}-api/access"}
        assert expected <= quoted_log_groups and "MessagesUrl" in outputs, flavour
        assert f"{PREFIX}-dlq-not-empty" in listed & quoted, flavour
        assert f"{PREFIX}-queue-stack" in quoted, flavour
    assert problems == []
