"""The results topic (result_topic = sns) and the idempotency table (idempotency = dynamodb) as the stack makes
them: names, encryption like the queues, who may publish (decided on the synthesized policies), the table's
settings per stage, and what the worker is given to reach them. Synthesized with both on (conftest's
`with_options`), whatever the answers."""

from __future__ import annotations

import pytest

from conftest import arn_of
from local.policies import ACCOUNT, Request, decide, resolve


@pytest.fixture(scope="module")
def topic_id(with_options, expected) -> str:
    return with_options.named("AWS::SNS::Topic", "TopicName", expected.results_topic_name)


@pytest.fixture(scope="module")
def table_id(with_options, expected) -> str:
    return with_options.named("AWS::DynamoDB::Table", "TableName", expected.idempotency_table_name)


def worker(with_options) -> dict:
    return with_options.only("AWS::Lambda::Function")


def role_arn(with_options) -> str:
    """The worker role's ARN as the resolved policies name it."""
    return f"<{worker(with_options)['Role']['Fn::GetAtt'][0]}.Arn>"


def topic_policy(with_options, topic_id) -> dict:
    [policy] = [
        resolve(p["Properties"]["PolicyDocument"])
        for p in with_options.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    return policy


def publish(topic_id: str, principal_arn: str, *, tls: bool = True) -> Request:
    return Request(
        principal={"AWS": principal_arn},
        action="sns:Publish",
        resource=f"<Ref {topic_id}>",
        context={"aws:PrincipalArn": principal_arn, "aws:SecureTransport": str(tls).lower()},
    )


def test_only_the_worker_may_publish_results_and_only_over_tls(with_options, topic_id):
    policy = topic_policy(with_options, topic_id)
    worker_arn = role_arn(with_options)
    # The topic policy allows no one (same-account IAM policies do); it denies everyone else, whatever IAM allows.
    assert decide(policy, publish(topic_id, worker_arn)) == "ImplicitDeny"
    assert decide(policy, publish(topic_id, f"arn:aws:iam::{ACCOUNT}:role/admin")) == "Deny"
    assert decide(policy, publish(topic_id, worker_arn, tls=False)) == "Deny"
    statements = with_options.statements_of(worker(with_options)["Role"]["Fn::GetAtt"][0])
    grants = [s for s in statements if "sns:Publish" in s["Action"]]
    assert grants == [{"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic_id}}]


def test_the_results_topic_is_encrypted_like_the_queues(with_options, topic_id, expected, answers):
    topic = with_options.json["Resources"][topic_id]["Properties"]
    if answers["queue_encryption"] == "kms-customer":
        assert topic["KmsMasterKeyId"] == arn_of(with_options.only_id("AWS::KMS::Key"))
    else:  # SNS has no AWS owned key: the AWS managed one (alias/aws/sns) stands in for SSE-SQS too
        assert "alias/aws/sns" in str(topic["KmsMasterKeyId"])


def test_the_stack_outputs_the_results_topics_arn_for_subscribers(with_options, topic_id):
    assert with_options.json["Outputs"]["ResultsTopicArn"]["Value"] == {"Ref": topic_id}


def test_the_worker_is_told_where_to_publish_and_which_table_to_use(with_options, topic_id, table_id, expected):
    variables = worker(with_options)["Environment"]["Variables"]
    assert variables["RESULT_TOPIC_ARN"] == {"Ref": topic_id}
    assert variables["IDEMPOTENCY_TABLE"] == {"Ref": table_id}
    assert variables["IDEMPOTENCY_KEY_FIELD"] == "idempotency_key"
    assert variables["IDEMPOTENCY_EXPIRY_SECONDS"] == str(expected.retention_seconds)  # the answers' days


def test_the_table_is_on_demand_with_ttl_and_keeps_prod_data(with_options, table_id, expected, answers):
    resource = with_options.json["Resources"][table_id]
    table = resource["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # Powertools' default key
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    recovery = table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
    assert recovery is expected.prod_like
    assert resource["DeletionPolicy"] == expected.deletion_policy
    sse = table.get("SSESpecification", {})
    if answers["queue_encryption"] == "kms-customer":
        assert sse["KMSMasterKeyId"] == arn_of(with_options.only_id("AWS::KMS::Key"))
    else:
        assert sse.get("SSEEnabled", False) is (answers["queue_encryption"] == "kms-managed")


def test_the_worker_may_only_read_and_write_records_of_its_table(with_options, table_id):
    statements = with_options.statements_of(worker(with_options)["Role"]["Fn::GetAtt"][0])
    on_table = [s for s in statements if any(str(a).startswith("dynamodb:") for a in s["Action"])]
    assert on_table == [
        {
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Effect": "Allow",
            "Resource": [arn_of(table_id)],
        }
    ]


def test_failed_publishes_and_deliveries_raise_alarms(with_options, expected):
    names = {a["Properties"]["AlarmName"] for a in with_options.resources("AWS::CloudWatch::Alarm").values()}
    assert {f"{expected.prefix}-results-publish-failed", f"{expected.prefix}-results-delivery-failed"} <= names
