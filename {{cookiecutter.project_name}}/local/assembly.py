"""The stack as synthesized (cdk.out), read for the emulator: queues, the worker and its event source, the API.

Nothing here is taken from settings.py: what runs locally is what `cdk deploy` would deploy. The template is
synthesized again when a source file is newer than it (app.py run as the CDK CLI runs it, with cdk.json's context).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sqs import QueueSpec

PROJECT = Path(__file__).resolve().parent.parent
CDK_OUT = PROJECT / "cdk.out"
# Queue properties CreateQueue takes as they are; KmsMasterKeyId is left out (no KMS locally, and moto would not
# enforce it), the redrive policy is rebuilt with the local dead-letter queue's ARN.
QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "MessageRetentionPeriod",
    "VisibilityTimeout",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
)


@dataclass(frozen=True)
class EventSource:
    """The worker's SQS event source mapping."""

    queue: str  # queue name
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int | None
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Function:
    """The worker function: its entry point, timeout, memory and environment (intrinsics left unresolved)."""

    name: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, Any]
    logical_id: str = "Worker"
    role: str = "WorkerRole"  # the execution role's logical id


class Assembly:
    """One synthesized stack template."""

    def __init__(self, template: dict[str, Any], path: Path) -> None:
        self.json = template
        self.path = path
        self.resources: dict[str, dict[str, Any]] = template["Resources"]

    @classmethod
    def load(cls, stack_name: str, *, stage: str | None = None, report: Callable[[str], None] = print) -> Assembly:
        path = CDK_OUT / f"{stack_name}.template.json"
        if not path.exists() or path.stat().st_mtime < newest_source():
            report(f"Synthesizing {stack_name} into cdk.out/ (a source file changed since the last synth) ...")
            synthesize(stage)
        return cls(json.loads(path.read_text()), path)

    # --- reading resources ----------------------------------------------------------------------------------------

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == resource_type:
                yield logical_id, resource.get("Properties", {})

    def only(self, resource_type: str) -> dict[str, Any]:
        [(_, properties)] = list(self.of_type(resource_type))
        return properties

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def queue_name(self, reference: dict[str, Any]) -> str:
        """The name of the queue a Ref or Fn::GetAtt points at."""
        logical_id = reference.get("Ref") or reference["Fn::GetAtt"][0]
        return self.properties(logical_id)["QueueName"]

    def integration_queue_name(self, uri: Any) -> str:
        """The queue an AWS integration URI (arn:...:apigateway:<region>:sqs:path/<account>/<queue>) points at."""
        last = (uri["Fn::Join"][1] if isinstance(uri, dict) else [uri])[-1]
        return self.queue_name(last) if isinstance(last, dict) else str(last).rsplit("/", 1)[-1]

    def queues(self) -> list[QueueSpec]:
        specs = []
        for _, queue in self.of_type("AWS::SQS::Queue"):
            attributes = {key: _attribute(queue[key]) for key in QUEUE_ATTRIBUTES if key in queue}
            redrive = queue.get("RedrivePolicy")
            specs.append(
                QueueSpec(
                    name=queue["QueueName"],
                    attributes=attributes,
                    dead_letter_queue=self.queue_name(redrive["deadLetterTargetArn"]) if redrive else None,
                    max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
                )
            )
        return specs

    def topics(self) -> dict[str, str]:
        """Logical id -> name of every SNS topic (the results topic, the alarm topic)."""
        return {logical_id: topic["TopicName"] for logical_id, topic in self.of_type("AWS::SNS::Topic")}

    def tables(self) -> dict[str, dict[str, Any]]:
        """Logical id -> what CreateTable needs of every DynamoDB table (the idempotency table)."""
        keys = ("TableName", "KeySchema", "AttributeDefinitions", "BillingMode")
        return {
            logical_id: {key: table[key] for key in keys if key in table}
            for logical_id, table in self.of_type("AWS::DynamoDB::Table")
        }

    def queue_ids(self) -> dict[str, str]:
        """Logical id -> name of every queue."""
        return {logical_id: queue["QueueName"] for logical_id, queue in self.of_type("AWS::SQS::Queue")}

    def event_source(self) -> EventSource:
        mapping = self.only("AWS::Lambda::EventSourceMapping")
        return EventSource(
            queue=self.queue_name(mapping["EventSourceArn"]),
            batch_size=int(mapping.get("BatchSize", 10)),
            batching_window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            max_concurrency=mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
        )

    def function(self) -> Function:
        mapping = self.only("AWS::Lambda::EventSourceMapping")
        logical_id = mapping["FunctionName"]["Ref"]
        function = self.properties(logical_id)
        return Function(
            name=function.get("FunctionName", "worker"),
            handler=function["Handler"],
            timeout_seconds=int(function.get("Timeout", 3)),
            memory_mb=int(function.get("MemorySize", 128)),
            environment=function.get("Environment", {}).get("Variables", {}),
            logical_id=logical_id,
            role=role_id(function["Role"]),
        )


def role_id(arn: dict[str, Any]) -> str:
    """The logical id of the role a `Fn::GetAtt [Role, Arn]` names (a function's role, an integration's credentials)."""
    return arn["Fn::GetAtt"][0]


def _attribute(value: Any) -> str:
    """A CloudFormation property as SQS's CreateQueue attribute string (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def newest_source() -> float:
    """The modification time of the newest file the synthesized template depends on."""
    files = [PROJECT / "app.py", PROJECT / "cdk.json", *(PROJECT / "{{ cookiecutter.__package_name }}").rglob("*")]
    files += (PROJECT / "schemas").rglob("*")  # the REST API's request model
    return max(f.stat().st_mtime for f in files if f.is_file() and "__pycache__" not in f.parts)


def synthesize(stage: str | None) -> None:
    """Run app.py as the CDK CLI does (its context from cdk.json, output in cdk.out/), offline."""
    context = json.loads((PROJECT / "cdk.json").read_text()).get("context", {})
    if stage:
        context["stage"] = stage
    env = os.environ | {
        "CDK_OUTDIR": str(CDK_OUT),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"
        ),
    }
    env.pop("CDK_DEFAULT_ACCOUNT", None)  # environment-agnostic, as in the tests: no lookups, no credentials
    done = subprocess.run([sys.executable, "app.py"], cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"synth failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
