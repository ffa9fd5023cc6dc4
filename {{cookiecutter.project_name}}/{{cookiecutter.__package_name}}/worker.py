"""The Lambda function that drains the queue, and the event source mapping that feeds it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .checks import acknowledge
from .encryption import log_group
from .network import WorkerNetwork
from .queue import QueueWithDeadLetter
from .settings import SDK_ATTEMPTS, WORKER_RUNTIME, Settings

# The asset is the worker folder and the message schema: no tests, no infrastructure code, no caches.
PROJECT = Path(__file__).resolve().parent.parent
WORKER_SOURCE = PROJECT / "worker"
SCHEMA = PROJECT / "schemas" / "message.json"
ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]


@jsii.implements(ILocalBundling)
class WorkerFolderWithSchema:
    """Builds the asset on this machine (no docker): worker/, plus schemas/message.json where worker/schema.py
    looks for it in Lambda. The asset's hash is its content's, so an edit to the schema deploys a new version."""

    def try_bundle(self, output_dir: str, options: Any) -> bool:  # options: the BundlingOptions, unused
        shutil.copytree(WORKER_SOURCE, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*ASSET_EXCLUDES))
        (Path(output_dir) / "schemas").mkdir(exist_ok=True)
        shutil.copy2(SCHEMA, Path(output_dir) / "schemas" / SCHEMA.name)
        return True


def worker_code() -> lambda_.Code:
    bundling = BundlingOptions(image=DockerImage.from_registry("scratch"), local=WorkerFolderWithSchema())
    return lambda_.Code.from_asset(
        str(WORKER_SOURCE), exclude=ASSET_EXCLUDES, bundling=bundling, asset_hash_type=AssetHashType.OUTPUT
    )


class Worker(Construct):
    """`function` receives batches from the queue and reports the records that failed (partial batch response);
    it sends the messages that can never succeed to the dead-letter queue itself (worker/dead_letters.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        queues: QueueWithDeadLetter,
        handler: str,
        network: WorkerNetwork | None = None,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.network = network
        self.log_group = log_group(self, "Logs", settings=settings, name=f"/aws/lambda/{settings.worker_name}", key=key)
        # Powertools comes from its public layer, pinned to the version the tests use: no docker, no bundling.
        # Its ARN is resolved from a public SSM parameter at deploy time, unless settings name one (`make preflight`
        # says whether the region has the parameter).
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            settings.powertools_layer_arn
            or ssm.StringParameter.value_for_string_parameter(self, settings.powertools_layer_parameter),
        )
        # An own role instead of AWSLambdaBasicExecutionRole: it may write to this log group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {settings.worker_name}",
        )
        self.log_group.grant_write(self.role)
        if network:
            # What AWSLambdaVPCAccessExecutionRole grants, inline: Lambda manages the worker's network interfaces.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=settings.worker_name,
            description=f"Processes messages from {settings.queue_name}",
            runtime=lambda_.Runtime(WORKER_RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.ARM_64,
            code=worker_code(),
            handler=handler,
            # Observability tools that ship as a Lambda extension plug in through settings, not the plumbing.
            layers=[powertools, *self._extension_layers(settings)],
            role=self.role,
            timeout=Duration.seconds(settings.worker_timeout_seconds),
            memory_size=settings.worker_memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": settings.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "QUEUE_TYPE": settings.queue_type,
                # worker/clients.py: every AWS client's timeouts and attempts, within the function's timeout.
                "SDK_CONNECT_TIMEOUT_SECONDS": str(settings.sdk_timeouts[0]),
                "SDK_READ_TIMEOUT_SECONDS": str(settings.sdk_timeouts[1]),
                "SDK_MAX_ATTEMPTS": str(SDK_ATTEMPTS),
                "DEAD_LETTER_QUEUE_URL": queues.dead_letter_queue.queue_url,
                "MAX_MESSAGE_BYTES": str(settings.max_message_bytes),  # worker/limits.py
                **settings.worker_environment,
            },
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
        )
        # Rejected messages go to the dead-letter queue on their first receive: SendMessage there, the key, a route.
        queues.dead_letter_queue.grant(self.role, "sqs:SendMessage")
        queues.grant_key_for_send(self.role)
        self.reach("sqs")
        for action, resource in settings.worker_permissions:  # the calls of the user's own logic
            self.role.add_to_policy(iam.PolicyStatement(actions=[action], resources=[resource]))
            self.reach(action.split(":")[0])
        self.event_source = sources.SqsEventSource(
            queues.queue,
            batch_size=settings.batch_size,
            max_batching_window=(
                Duration.seconds(settings.batching_window_seconds) if settings.batching_window_seconds else None
            ),
            max_concurrency=settings.max_concurrency,
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)
        self._acknowledge_checks()

    def reach(self, service: str) -> None:
        """In a VPC, a private route to an AWS service the worker calls (sqs, sns, dynamodb, s3, ...): grant a call and
        open its route together, or the call hangs until its connect timeout."""
        if self.network is not None:
            self.network.reach(service)

    def _extension_layers(self, settings: Settings) -> list[lambda_.ILayerVersion]:
        return [
            lambda_.LayerVersion.from_layer_version_arn(self, f"Extension{n}", arn)
            for n, arn in enumerate(settings.worker_extension_layer_arns)
        ]

    def _acknowledge_checks(self) -> None:
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) and, in a VPC, Lambda's management of "
            "the worker's network interfaces (ec2:*NetworkInterface*, as in AWSLambdaVPCAccessExecutionRole) take no "
            "resource-level permissions, so Resource is '*'.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The function is invoked synchronously by the SQS event source mapping, never asynchronously; "
            "failed messages go to the queue's own dead-letter queue through its redrive policy.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings take no on-failure destination; the queue's redrive policy moves a "
            "message to the dead-letter queue after dlq_retries receives.",
        )
