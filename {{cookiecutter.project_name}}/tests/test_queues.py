"""The queue pair: names, retention, redrive, visibility timeout, encryption at rest and in transit."""

from __future__ import annotations

from conftest import DAY, arn_of


def queues_by_name(synthesized):
    return {r["Properties"]["QueueName"]: (lid, r) for lid, r in synthesized.resources("AWS::SQS::Queue").items()}


def test_queue_and_dead_letter_queue_carry_the_design_names(synthesized, expected):
    assert set(queues_by_name(synthesized)) == {expected.queue_name, expected.dlq_name}


def test_queue_keeps_messages_for_the_retention_asked(synthesized, expected):
    _, queue = queues_by_name(synthesized)[expected.queue_name]
    assert queue["Properties"]["MessageRetentionPeriod"] == expected.retention_seconds


def test_dead_letter_queue_keeps_messages_fourteen_days(synthesized, expected):
    _, dlq = queues_by_name(synthesized)[expected.dlq_name]
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * DAY


def test_queue_redrives_to_the_dead_letter_queue_after_dlq_retries_receives(synthesized, expected):
    dlq_id, _ = queues_by_name(synthesized)[expected.dlq_name]
    _, queue = queues_by_name(synthesized)[expected.queue_name]
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": arn_of(dlq_id),
        "maxReceiveCount": expected.max_receive_count,
    }


def test_visibility_timeout_is_six_worker_timeouts_plus_the_batching_window(synthesized, expected):
    _, queue = queues_by_name(synthesized)[expected.queue_name]
    visibility = queue["Properties"]["VisibilityTimeout"]
    assert visibility == 6 * expected.worker_timeout + expected.batching_window
    assert visibility >= synthesized.only("AWS::Lambda::Function")["Timeout"] * 6


def test_both_queues_are_encrypted_as_asked(synthesized, answers):
    keys = synthesized.resources("AWS::KMS::Key")
    wanted = {
        "kms-managed": {"KmsMasterKeyId": "alias/aws/sqs"},
        "kms-customer": {"KmsMasterKeyId": arn_of(next(iter(keys), "none"))},
        "sqs-managed": {"SqsManagedSseEnabled": True},
    }[answers["queue_encryption"]]
    for _, queue in queues_by_name(synthesized).values():
        encryption = {k: v for k, v in queue["Properties"].items() if k in ("KmsMasterKeyId", "SqsManagedSseEnabled")}
        assert encryption == wanted
    assert len(keys) == (1 if answers["queue_encryption"] == "kms-customer" else 0)
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())


def test_both_queues_refuse_requests_without_tls(synthesized):
    protected = set()
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement == {
                "Action": "sqs:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Resource": statement["Resource"],
            }:
                protected.add(statement["Resource"]["Fn::GetAtt"][0])
    assert protected == set(synthesized.resources("AWS::SQS::Queue"))


def test_queues_are_fifo_exactly_when_asked(synthesized, expected):
    for _, queue in queues_by_name(synthesized).values():
        assert queue["Properties"].get("FifoQueue", False) is expected.fifo


def sends_per_second(queue: dict) -> float:
    """What SQS accepts from SendMessage per second on this queue (SQS quotas): a FIFO queue 300 calls/s, unless in
    high-throughput mode (both attributes below), where most regions take 2,400 (some more); standard: no limit."""
    properties = queue["Properties"]
    if not properties.get("FifoQueue"):
        return float("inf")
    high_throughput = (properties.get("DeduplicationScope"), properties.get("FifoThroughputLimit")) == (
        "messageGroup",
        "perMessageGroupId",
    )
    return 2400 if high_throughput else 300


def test_the_queue_accepts_every_request_the_api_lets_through(synthesized, answers):
    _, queue = queues_by_name(synthesized)[
        f"{answers['project_name']}-{answers['stage']}-queue" + (".fifo" if answers["queue_type"] == "fifo" else "")
    ]
    assert sends_per_second(queue) >= int(answers["api_throttling"])


def test_fifo_queues_run_in_high_throughput_mode(synthesized, answers):
    """Both queues: redrive moves messages into the dead-letter queue at the source queue's pace."""
    for name, (_, queue) in queues_by_name(synthesized).items():
        wanted = 2400 if answers["queue_type"] == "fifo" else float("inf")
        assert sends_per_second(queue) == wanted, name


def test_a_message_that_keeps_failing_reaches_the_dead_letter_queue_before_it_expires(synthesized, expected):
    """Each failed receive hides the message for a visibility timeout; after maxReceiveCount of them SQS moves it.
    If that took as long as the retention, the message would expire in the queue and be lost."""
    _, queue = queues_by_name(synthesized)[expected.queue_name]
    properties = queue["Properties"]
    budget = properties["VisibilityTimeout"] * properties["RedrivePolicy"]["maxReceiveCount"]
    assert budget < properties["MessageRetentionPeriod"]


def test_queues_and_key_outlive_destroy_only_on_prod_like_stages(synthesized, expected):
    stateful = {**synthesized.resources("AWS::SQS::Queue"), **synthesized.resources("AWS::KMS::Key")}
    wanted = "Retain" if expected.prod_like else "Delete"
    assert {resource["DeletionPolicy"] for resource in stateful.values()} == {wanted}


def test_both_queues_take_sqs_largest_message(synthesized, expected):
    """Set, not left to the default, so that the API's documented body limit, the queues' and the worker's checks
    (worker/limits.py) are one number: 1 MiB, body and attributes (SQS's maximum since 2025)."""
    for name in (expected.queue_name, expected.dlq_name):
        assert (
            synthesized.json["Resources"][synthesized.queue_id(name)]["Properties"]["MaximumMessageSize"] == 1_048_576
        )
