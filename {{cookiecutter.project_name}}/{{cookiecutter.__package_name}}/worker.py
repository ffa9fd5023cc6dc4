"""The Lambda function that drains the queue, and the event source mapping that feeds it."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .checks import acknowledge
from .encryption import log_group
from .network import WorkerNetwork
from .settings import WORKER_RUNTIME, Settings

# The asset is the worker folder alone: no tests, no infrastructure code, no caches.
WORKER_SOURCE = Path(__file__).resolve().parent.parent / "worker"
ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]


class Worker(Construct):
    """`function` receives batches from `queue` and reports the records that failed (partial batch response)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        queue: sqs.IQueue,
        handler: str,
        network: WorkerNetwork | None = None,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
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
            code=lambda_.Code.from_asset(str(WORKER_SOURCE), exclude=ASSET_EXCLUDES),
            handler=handler,
            # Observability tools that ship as a Lambda extension plug in through settings, not the plumbing.
            layers=[powertools, *self._extension_layers(settings)],
            role=self.role,
            timeout=Duration.seconds(settings.worker_timeout_seconds),
            memory_size=settings.worker_memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": settings.project_name,
                "POWERTOOLS_METRICS_NAMESPACE": settings.project_name,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "QUEUE_TYPE": settings.queue_type,
                **settings.worker_environment,
            },
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
        )
        self.event_source = sources.SqsEventSource(
            queue,
            batch_size=settings.batch_size,
            max_batching_window=(
                Duration.seconds(settings.batching_window_seconds) if settings.batching_window_seconds else None
            ),
            max_concurrency=settings.max_concurrency,
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)
        self._acknowledge_checks()

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
