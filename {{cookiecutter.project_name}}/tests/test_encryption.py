"""Encryption at rest and log groups: every log group the stack creates is its own (retention, removal policy), and
with a customer key, the key encrypts them all and its policy lets CloudWatch Logs use it for exactly those."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import Synthesized
from local.policies import ACCOUNT, REGION, Request, decide, resolve

LOGS = {"Service": f"logs.{REGION}.amazonaws.com"}
LOGS_NEEDS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey")


def expected_log_groups(answers: dict, prefix: str, synthesized) -> set[str]:
    flavour = answers["api_flavour"]
    names = {f"/aws/lambda/{prefix}-worker", f"/aws/apigateway/{prefix}-{flavour}-api/access"}
    if answers["worker_vpc"] == "new":
        names.add(f"/aws/vpc/{prefix}/flow-logs")
    if flavour == "rest":  # API Gateway would otherwise create it itself, outside the stack
        api_id = synthesized.only_id("AWS::ApiGateway::RestApi")
        names.add(f"API-Gateway-Execution-Logs_<Ref {api_id}>/{answers['stage']}")
    return names


def log_groups(synthesized) -> dict[str, dict]:
    """Log group resources by their (resolved) name."""
    return {resolve(r["Properties"]["LogGroupName"]): r for r in synthesized.resources("AWS::Logs::LogGroup").values()}


def log_group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def test_the_stack_creates_every_log_group_its_resources_write_to(synthesized, answers, prefix):
    assert set(log_groups(synthesized)) == expected_log_groups(answers, prefix, synthesized)


def test_every_log_group_follows_the_stage(synthesized, expected):
    for name, group in log_groups(synthesized).items():
        assert group["Properties"]["RetentionInDays"] == expected.log_retention_days, name
        assert group["DeletionPolicy"] == expected.deletion_policy, name


def test_log_groups_are_encrypted_with_the_customer_key_exactly_when_chosen(synthesized, answers):
    keys = synthesized.resources("AWS::KMS::Key")
    assert len(keys) == (1 if answers["queue_encryption"] == "kms-customer" else 0)
    expected = [{"Fn::GetAtt": [key_id, "Arn"]} for key_id in keys]
    for name, group in log_groups(synthesized).items():
        if keys:
            assert [group["Properties"].get("KmsKeyId")] == expected, name
        else:
            assert "KmsKeyId" not in group["Properties"], name


@pytest.fixture(scope="module")
def with_key(synthesized, settings, answers, tmp_path_factory) -> Synthesized:
    """The stack with a customer key: this project's, or synthesized with queue_encryption = kms-customer."""
    if answers["queue_encryption"] == "kms-customer":
        return synthesized
    keyed = dataclasses.replace(settings, queue_encryption="kms-customer")
    return Synthesized(keyed, tmp_path_factory.mktemp("cdk.out-key"))


def test_cloudwatch_logs_may_use_the_key_for_these_log_groups_only(with_key, answers, prefix):
    """CloudWatch Logs refuses to create an encrypted log group unless the key policy lets the regional logs
    service principal use the key, with the log group's ARN as encryption context."""
    key_policy = with_key.only("AWS::KMS::Key")["KeyPolicy"]
    names = log_groups(with_key)
    assert set(names) == expected_log_groups(answers, prefix, with_key)
    for name in names:
        for action in LOGS_NEEDS:
            request = Request(LOGS, action, "*", {"kms:EncryptionContext:aws:logs:arn": log_group_arn(name)})
            assert decide(key_policy, request) == "Allow", (name, action)
    for other in (f"/aws/lambda/{prefix}-other", "/aws/lambda/someone-else"):
        request = Request(
            LOGS, "kms:GenerateDataKey", "*", {"kms:EncryptionContext:aws:logs:arn": log_group_arn(other)}
        )
        assert decide(key_policy, request) == "ImplicitDeny", other
    assert decide(key_policy, Request(LOGS, "kms:GenerateDataKey", "*")) == "ImplicitDeny"  # no context, no key


def test_the_key_policy_names_no_service_beyond_logs_and_alarms(with_key):
    services = {
        str(resolve(s["Principal"]["Service"]))
        for s in with_key.only("AWS::KMS::Key")["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    }
    assert services == {LOGS["Service"], "cloudwatch.amazonaws.com"}
