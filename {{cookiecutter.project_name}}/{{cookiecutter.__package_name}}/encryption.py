"""Encryption at rest for everything the stack keeps: the customer key (queue_encryption = kms-customer) and the
log groups, which all go through `log_group` so that none escapes the stage's retention, removal policy and key.

A key policy is the only thing that lets an AWS service use a customer key: IAM grants to our own roles are not
enough for CloudWatch Logs (which encrypts log events itself) or CloudWatch alarms (which publish to the encrypted
alarm topic). Each such service gets exactly the actions it needs; CloudWatch Logs for this stack's log groups only.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from .settings import Settings

# What CloudWatch Logs needs on a log group's key (CloudWatch Logs guide, "Encrypt log data using AWS KMS").
LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
# What a CloudWatch alarm needs to publish to an SNS topic encrypted with a customer key (SNS guide, "Enable
# compatibility between event sources from AWS services and encrypted topics").
ALARM_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


def customer_key(scope: Construct, settings: Settings) -> kms.Key | None:
    """The stack's own key with kms-customer (queues, alarm topic, log groups); None: AWS owned or managed keys."""
    if settings.queue_encryption != "kms-customer":
        return None
    return kms.Key(
        scope,
        "Key",
        alias=f"alias/{settings.prefix}-queue",
        description=f"Encrypts the queues, alarm topic and log groups of {settings.stack_name}",
        enable_key_rotation=True,
        removal_policy=settings.removal_policy,
    )


def log_group_arn(scope: Construct, name: str) -> str:
    """The ARN CloudWatch Logs puts in the encryption context of a log group's data keys (no `:*` suffix)."""
    return Stack.of(scope).format_arn(
        service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def log_group(
    scope: Construct,
    construct_id: str,
    *,
    settings: Settings,
    name: str,
    key: kms.IKey | None,
    name_pattern: str | None = None,
) -> logs.LogGroup:
    """A log group of this stack: the stage's retention and removal policy, encrypted with `key` when given.

    CloudWatch Logs checks the key policy when the log group is created, so the key's statement for this log group
    is part of the key resource, which the log group depends on. `name_pattern`: for a name that holds another
    resource's id (REST's execution logs hold the API's), the pattern the key policy names instead (ArnLike), so
    that the key, kept on prod-like stages, refers to nothing a new stack makes anew (`cdk import` can adopt it).
    """
    if key is not None:
        operator = "ArnLike" if name_pattern else "ArnEquals"
        context = {"kms:EncryptionContext:aws:logs:arn": log_group_arn(scope, name_pattern or name)}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=LOGS_KEY_ACTIONS,
                resources=["*"],
                conditions={operator: context},
            )
        )
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=settings.log_retention,
        removal_policy=settings.removal_policy,
        encryption_key=key,
    )


def allow_alarms_to_use(key: kms.IKey) -> None:
    """Let CloudWatch alarms publish to a topic encrypted with `key`. The statement is AWS's documented one, with no
    condition: AWS documents none that CloudWatch's calls carry, and the topic policy already admits this stack's
    alarms only (monitoring.py)."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=ALARM_KEY_ACTIONS,
            resources=["*"],
        )
    )
