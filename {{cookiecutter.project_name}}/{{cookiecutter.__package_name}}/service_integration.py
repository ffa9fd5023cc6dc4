"""What the REST and WebSocket flavours share: API Gateway calling SQS itself through VTL mapping templates, and
the region's API Gateway account role that their stages log through."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from .checks import acknowledge
from .settings import Settings

MAPPING = Path(__file__).resolve().parent / "mapping"
# SendMessage as an SQS query request: the templates write a form, and this header tells SQS so.
FORM_CONTENT_TYPE = {"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"}


def mapping_template(name: str) -> str:
    return (MAPPING / name).read_text(encoding="utf-8")


def send_message_template(name: str, settings: Settings) -> str:
    """A request template as deployed: the file, told whether the queue is FIFO (`$fifo`)."""
    fifo = "true" if settings.fifo else "false"
    return f"#set($fifo = {fifo})##\n" + mapping_template(name)


def account_logging_role(scope: Construct) -> apigw.CfnAccount:
    """The API Gateway account setting (one per region) that REST and WebSocket stages write their logs through.

    Other APIs of the region may rely on it, so the role and the setting outlive this stack (as the CDK's own
    `cloud_watch_role` does). Deploying it replaces a logging role the region may already have.
    """
    role = iam.Role(
        scope,
        "CloudWatchRole",
        assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
        description="API Gateway account role: writes API logs to CloudWatch Logs (shared by the region's APIs)",
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
        ],
    )
    account = apigw.CfnAccount(scope, "Account", cloud_watch_role_arn=role.role_arn)
    role.apply_removal_policy(RemovalPolicy.RETAIN)
    account.apply_removal_policy(RemovalPolicy.RETAIN)
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "The account-level API Gateway logging role serves every REST and WebSocket API of the region, whose log "
        "groups are named at run time; AWS maintains this managed policy as exactly what API Gateway needs.",
    )
    return account


def send_message_role(scope: Construct, settings: Settings) -> iam.Role:
    """The integration's role; the caller grants it `sqs:SendMessage` on the queue (QueueWithDeadLetter.grant_send)."""
    return iam.Role(
        scope,
        "SendMessageRole",
        assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
        description=f"Lets {settings.api_name} send messages to {settings.queue_name}",
    )
