"""The policy evaluator that decides every call under `make local` and in the policy tests (local/policies.py),
checked against AWS's documented evaluation logic on small templates written here, not on the stack."""

from __future__ import annotations

import pytest

from local.policies import Authority, Call

ACCOUNT, REGION = "111122223333", "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Role"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/Key"
ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


def template(identity: list[dict], queue_policy: list[dict] | None = None, key_policy: list[dict] | None = None):
    resources = {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "RolePolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"PolicyDocument": {"Statement": identity}, "Roles": [{"Ref": "Role"}]},
        },
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
    }
    if queue_policy is not None:
        resources["QueuePolicy"] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"PolicyDocument": {"Statement": queue_policy}, "Queues": [{"Ref": "Queue"}]},
        }
    if key_policy is not None:
        resources["Key"] = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": key_policy}}}
        resources["Queue"]["Properties"]["KmsMasterKeyId"] = {"Fn::GetAtt": ["Key", "Arn"]}
    return {"Resources": resources}


def decide(stack: dict, action: str = "sqs:SendMessage", resource: str = QUEUE_ARN, **context: str):
    return Authority(stack, account=ACCOUNT, region=REGION).decide(Call("Role", action, resource, context))


SEND = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}
TLS_ONLY = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "sqs:*",
    "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_an_identity_policy_grant_allows_and_nothing_else_does():
    assert decide(template([SEND])).allowed
    refused = decide(template([SEND]), "sqs:DeleteMessage")
    assert not refused.allowed
    assert refused.why == "because no identity-based policy allows the sqs:DeleteMessage action"
    assert not decide(template([SEND]), resource=f"arn:aws:sqs:{REGION}:{ACCOUNT}:other").allowed


def test_an_explicit_deny_in_a_resource_policy_wins_over_any_allow():
    stack = template([SEND], [TLS_ONLY])
    assert decide(stack, **{"aws:SecureTransport": "true"}).allowed
    refused = decide(stack, **{"aws:SecureTransport": "false"})
    assert not refused.allowed and refused.why == "with an explicit deny in a resource-based policy"


def test_a_resource_policy_naming_the_role_allows_without_an_identity_grant_but_the_account_root_does_not():
    named = {"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "sqs:SendMessage", "Resource": "*"}
    assert decide(template([], [named])).allowed
    delegated = named | {"Principal": ROOT}
    assert not decide(template([], [delegated])).allowed


def test_a_negated_arn_condition_denies_everyone_but_the_named_principal():
    others = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Someone"}},
    }
    assert not decide(template([SEND], [others])).allowed
    mine = others | {"Condition": {"ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}}}
    assert decide(template([SEND], [mine])).allowed


def test_a_customer_key_must_let_the_caller_in_through_its_own_policy():
    """SendMessage to a queue under a customer key also needs kms:GenerateDataKey and kms:Decrypt, which the key
    policy must allow: naming the caller, or delegating to the account's IAM policies (then IAM must grant them)."""
    key_grant = {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}
    delegate = {"Effect": "Allow", "Principal": ROOT, "Action": "kms:*", "Resource": "*"}
    assert decide(template([SEND, key_grant], key_policy=[delegate])).allowed
    refused = decide(template([SEND], key_policy=[delegate]))
    assert not refused.allowed and refused.call.action == "kms:GenerateDataKey" and refused.call.resource == KEY_ARN
    assert not decide(template([SEND, key_grant], key_policy=[])).allowed  # the key policy does not delegate
    via_sqs = delegate | {"Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}}
    assert decide(template([SEND, key_grant], key_policy=[via_sqs])).allowed


@pytest.mark.parametrize(
    "condition",
    [{"NumericLessThan": {"aws:SecureTransport": "1"}}, {"StringEquals": {"aws:RequestedRegion": REGION}}],
    ids=["operator", "key"],
)
def test_an_unknown_condition_operator_or_key_is_refused_loudly_never_ignored(condition):
    with pytest.raises(NotImplementedError, match="not understood"):
        Authority(template([SEND | {"Condition": condition}]), account=ACCOUNT, region=REGION)


def test_an_element_it_does_not_know_is_refused_loudly():
    with pytest.raises(NotImplementedError, match="NotAction"):
        Authority(template([{"Effect": "Allow", "NotAction": "sqs:*", "Resource": "*"}]), account=ACCOUNT)


def test_an_aws_managed_key_is_not_decided_as_the_stacks_own():
    """alias/aws/sqs and alias/aws/sns serve every principal of the account through their service."""
    stack = template([SEND])
    managed = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":kms:", {"Ref": "AWS::Region"}, ":alias/aws/sqs"]]}
    stack["Resources"]["Queue"]["Properties"]["KmsMasterKeyId"] = managed
    assert decide(stack).allowed
