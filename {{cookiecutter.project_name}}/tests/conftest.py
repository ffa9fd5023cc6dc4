"""Shared fixtures: the stack is synthesized once per test session (a synth costs seconds and ~450 MiB)."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from {{ cookiecutter.__package_name }}.checks import add_checks
from {{ cookiecutter.__package_name }}.settings import ANSWERS, Settings
from {{ cookiecutter.__package_name }}.stack import QueueStack

from local.assembly import Assembly
from local.emulator import Emulator, Options
from local.sqs import Answer, LocalSqs, QueueSpec

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
PROJECT = Path(__file__).resolve().parent.parent


class Synthesized:
    """The cloud assembly of one synth with the cdk-nag checks on, and easy access to its stack template."""

    def __init__(
        self,
        settings: Settings,
        outdir: Path,
        *,
        env: cdk.Environment | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        app = cdk.App(outdir=str(outdir), context=context)
        self.stack = QueueStack(app, settings=settings, env=env)
        add_checks(app)
        self.assembly = app.synth()  # raises if a check reports an unacknowledged finding
        self.outdir = outdir
        self.template_path = outdir / self.stack.template_file
        self.json: dict[str, Any] = json.loads(self.template_path.read_text())
        self.template = Template.from_json(self.json)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only_id(self, resource_type: str) -> str:
        """The logical id of the single resource of this type (fails if there are none or several)."""
        [logical_id] = self.resources(resource_type)
        return logical_id

    def only(self, resource_type: str) -> dict[str, Any]:
        """The properties of the single resource of this type (fails if there are none or several)."""
        return self.json["Resources"][self.only_id(resource_type)].get("Properties", {})

    def named(self, resource_type: str, name_property: str, name: str) -> str:
        """The logical id of the one resource of this type with this name (e.g. a queue by its QueueName)."""
        [logical_id] = [
            logical_id
            for logical_id, resource in self.resources(resource_type).items()
            if resource["Properties"].get(name_property) == name
        ]
        return logical_id

    def queue_id(self, name: str) -> str:
        return self.named("AWS::SQS::Queue", "QueueName", name)

    def log_group_id(self, name: str) -> str:
        return self.named("AWS::Logs::LogGroup", "LogGroupName", name)

    def statements_of(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of the inline policies attached to a role."""
        return [
            statement
            for policy in self.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return ANSWERS


@pytest.fixture(scope="session")
def answers() -> dict[str, Any]:
    """The answers given when the project was generated, as cookiecutter recorded them: expected values come from
    here and from AWS's documented rules, not from the code under test."""
    return json.loads((PROJECT / ".cookiecutter.json").read_text())


@pytest.fixture(scope="session")
def prefix(answers: dict[str, Any]) -> str:
    return f"{answers['project_name']}-{answers['stage']}"


DAY = 24 * 60 * 60
PROD_LIKE_STAGE_NAMES = {"prod", "production", "live"}  # the stages the README promises keep their data


class Expected:
    """What the answers (.cookiecutter.json) and the documented rules say the stack must be, computed here without
    settings.py, so that a template wiring a wrong answer (or a wrong rule) into the settings fails these tests."""

    def __init__(self, answers: dict[str, Any]) -> None:
        number = {key: int(value) for key, value in answers.items() if str(value).isdigit()}
        self.stage = answers["stage"]
        self.prefix = f"{answers['project_name']}-{self.stage}"
        self.fifo = answers["queue_type"] == "fifo"
        suffix = ".fifo" if self.fifo else ""  # SQS requires it on FIFO queue names
        self.stack_name = f"{self.prefix}-queue-stack"
        self.queue_name = f"{self.prefix}-queue{suffix}"
        self.dlq_name = f"{self.prefix}-dlq{suffix}"
        self.api_flavour = answers["api_flavour"]
        self.api_auth = answers["api_auth"]
        self.api_name = f"{self.prefix}-{self.api_flavour}-api"
        self.worker_name = f"{self.prefix}-worker"
        self.result_topic, self.idempotency = answers["result_topic"], answers["idempotency"]
        self.results_topic_name = f"{self.prefix}-results"
        self.idempotency_table_name = f"{self.prefix}-idempotency"
        self.prod_like = self.stage in PROD_LIKE_STAGE_NAMES
        self.deletion_policy = "Retain" if self.prod_like else "Delete"
        self.log_retention_days = 365 if self.prod_like else 14
        self.rate_limit, self.burst_limit = number["api_throttling"], number["api_burst"]
        self.retention_seconds = number["queue_retention_days"] * DAY
        self.max_receive_count = number["dlq_retries"]
        self.batch_size, self.batching_window = number["batch_size"], number["batching_window_seconds"]
        self.max_concurrency = number["max_concurrency"]
        self.worker_timeout, self.worker_memory = number["worker_timeout_seconds"], number["worker_memory_mb"]
        # Lambda guidance: visibility timeout >= 6 x function timeout + batching window.
        self.visibility_timeout = 6 * self.worker_timeout + self.batching_window


@pytest.fixture(scope="session")
def expected(answers: dict[str, Any]) -> Expected:
    return Expected(answers)


@pytest.fixture(scope="session")
def synthesized(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # SYNTH_OUTDIR keeps the cloud assembly for a later look (the template's tests scan it with checkov).
    kept = os.environ.get("SYNTH_OUTDIR")
    return Synthesized(settings, Path(kept) if kept else tmp_path_factory.mktemp("cdk.out"))


ROUTE = "orders"  # the named WebSocket route of `with_options`


@pytest.fixture(scope="session")
def with_options(settings: Settings, synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack with what the answers may leave off (the results topic, the idempotency table, a named WebSocket
    route, the worker in a VPC), so that every project tests them together: synthesized once per session, with the
    cdk-nag checks on."""
    options = {"result_topic": "sns", "idempotency": "dynamodb", "websocket_routes": (ROUTE,), "worker_vpc": "new"}
    if all(getattr(settings, key) == value for key, value in options.items()):
        return synthesized
    return Synthesized(dataclasses.replace(settings, **options), tmp_path_factory.mktemp("cdk.out-options"))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


AUTHORIZATION_TYPE = {"iam": "AWS_IAM", "none": "NONE"}  # api_auth -> API Gateway's authorization type


def assert_throttled_as_asked(route_settings: dict[str, Any], expected: Expected) -> None:
    """A stage's default route or method settings throttle at api_throttling steady and api_burst burst."""
    assert route_settings["ThrottlingRateLimit"] == expected.rate_limit
    assert route_settings["ThrottlingBurstLimit"] == expected.burst_limit


def assert_json_access_logs(synthesized: Synthesized, expected: Expected, access_log_setting: dict[str, Any]) -> None:
    """A stage's access logs are JSON lines in the API's own log group, with the fields an operator looks for."""
    log_group_id = synthesized.log_group_id(f"/aws/apigateway/{expected.api_name}/access")
    assert access_log_setting["DestinationArn"] == arn_of(log_group_id)
    fields = json.loads(access_log_setting["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["integrationError"] == "$context.integration.error"


def assert_may_only_send_to_the_queue(synthesized: Synthesized, expected: Expected, role_id: str) -> None:
    """An integration role: assumed by API Gateway, no managed policy, SendMessage on this queue and nothing more
    (plus the data-key actions on the customer key when there is one)."""
    role = synthesized.json["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    allowed = [{"Action": "sqs:SendMessage", "Resource": arn_of(synthesized.queue_id(expected.queue_name))}]
    keys = list(synthesized.resources("AWS::KMS::Key"))
    if keys:
        allowed.append({"Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": arn_of(keys[0])})
    statements = [{"Action": s["Action"], "Resource": s["Resource"]} for s in synthesized.statements_of(role_id)]
    assert statements == allowed


# --- the local SQS (moto server, as `make local` runs it) ------------------------------------------------------------


@pytest.fixture(scope="session")
def local_sqs_server():
    """For the contract tests, in a region of its own: the emulator (`pipeline`) keeps its queues in moto's default."""
    server = LocalSqs(port=0, region="eu-west-1")
    yield server
    server.stop()


@dataclass
class LocalQueues:
    """This project's queue and dead-letter queue, empty, in the local SQS; reached over HTTP as API Gateway and
    the worker reach SQS."""

    sqs: LocalSqs
    queue_name: str
    dlq_name: str

    @property
    def client(self) -> Any:
        return self.sqs.client

    @property
    def url(self) -> str:
        return self.sqs.url(self.queue_name)

    @property
    def dlq_url(self) -> str:
        return self.sqs.url(self.dlq_name)

    def post(self, form: str, headers: dict[str, str]) -> Answer:
        """An integration's SendMessage form, POSTed to the queue with the integration's headers, signed."""
        return self.sqs.post(self.queue_name, form, headers)

    def messages(self) -> list[dict[str, Any]]:
        """Every message the queue holds now (received, with all attributes, and deleted)."""
        answer = self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        for message in messages:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def send(self, form: str, headers: dict[str, str]) -> tuple[Answer, dict[str, Any]]:
        """POST the form; SQS must accept it and store exactly one message, which is returned."""
        answer = self.post(form, headers)
        assert answer.status == 200, answer.body
        [message] = self.messages()
        return answer, message


@pytest.fixture
def local_queues(local_sqs_server: LocalSqs, expected: Expected) -> LocalQueues:
    """Fresh, empty queues under this project's names, of its type (FIFO or standard), for each test."""
    fifo = {"FifoQueue": "true"} if expected.fifo else {}
    dlq = QueueSpec(expected.dlq_name, fifo)
    queue = QueueSpec(expected.queue_name, fifo, expected.dlq_name, expected.max_receive_count)
    local_sqs_server.recreate([dlq, queue])
    return LocalQueues(local_sqs_server, expected.queue_name, expected.dlq_name)


MANY_RETRIES = 5
TIMEOUT_FLOOR = 10


@pytest.fixture(scope="session")
def pipeline(synthesized: Synthesized, expected: Expected, tmp_path_factory: pytest.TempPathFactory):
    """`make local` on free ports, for this project's stack as synthesized. When the answers allow many receives
    before the dead-letter queue, the visibility timeout is 0, one poller runs and each batch is one receive, so that
    a poison message makes its dlq_retries trips in seconds (nothing is received twice while in flight); else 2 s, two
    pollers and a batching window of at most 1 s. Its promises are about messages, not time: an invocation may run
    at least TIMEOUT_FLOOR s, so that a loaded machine cannot time out a 1 s worker's batch and send it round again
    (the timeout wall has tests of its own in test_local.py)."""
    many = expected.max_receive_count > MANY_RETRIES
    options = Options(
        sqs_port=0,
        api_port=0,
        visibility_timeout=0 if many else 2,
        max_concurrency=1 if many else 2,
        # A message visible again at once would come back within one batching window: one receive per batch then.
        batching_window=0 if many else min(expected.batching_window, 1),
        keep_deliveries=True,
        timeout_floor=TIMEOUT_FLOOR,
    )
    log = tmp_path_factory.mktemp("local") / "worker.log"
    with log.open("w") as output:
        assembly = Assembly(synthesized.json, synthesized.template_path)
        with Emulator(options, assembly=assembly, worker_output=output, log=print) as emulator:
            emulator.worker_log = log
            yield emulator


# The worker tests' AWS (test_worker.py, test_replies.py, test_worker_options.py): moto, started once per module
# (a start costs ~0.5 s), and a dead-letter queue or table of its own for each test.
@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def dlq_url(aws: None) -> str:
    return boto3.client("sqs", region_name="eu-west-1").create_queue(QueueName=unique("dlq"))["QueueUrl"]


@pytest.fixture
def fifo_dlq_url(aws: None) -> str:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    return sqs.create_queue(QueueName=unique("dlq") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]


@pytest.fixture
def idempotency_table(aws: None) -> str:
    """The idempotency table as the stack makes it (idempotency.py): partition key `id`, on demand."""
    name = unique("idempotency")
    boto3.client("dynamodb", region_name="eu-west-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
