"""make redrive: the copy fallback against a local SQS (moto), the move-task path against botocore's Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ops import redrive

REGION = "eu-west-1"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:queue"
QUEUES = redrive.Queues("https://queue", "https://dlq", QUEUE_ARN, DLQ_ARN)


def body(n: int) -> str:
    return json.dumps({"n": n, "text": "ünïcode & = +"}, ensure_ascii=False)


@pytest.fixture
def local_sqs(settings):
    """The real queue names; the DLQ holds 25 messages with attributes (and groups on FIFO)."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        fifo = {"FifoQueue": "true"} if settings.fifo else {}
        dlq_url = sqs.create_queue(QueueName=settings.dlq_name, Attributes=fifo)["QueueUrl"]
        sqs.create_queue(QueueName=settings.queue_name, Attributes=fifo)
        for n in range(25):
            extra = {"MessageGroupId": f"group-{n % 3}", "MessageDeduplicationId": f"d{n}"} if settings.fifo else {}
            sqs.send_message(
                QueueUrl=dlq_url,
                MessageBody=body(n),
                MessageAttributes={"connectionId": {"DataType": "String", "StringValue": f"conn-{n}"}},
                **extra,
            )
        yield sqs


def drain(sqs, url) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return messages


def test_dry_run_counts_and_moves_nothing(local_sqs, settings, capsys):
    assert redrive.main(["--dry-run"], sqs=local_sqs) == 0
    assert f"25 message(s) wait in {settings.dlq_name}" in capsys.readouterr().out
    queues = redrive.Queues.look_up(local_sqs, settings.queue_name, settings.dlq_name)
    assert redrive.waiting(local_sqs, queues.dlq_url) == 25
    assert redrive.waiting(local_sqs, queues.queue_url) == 0


def test_copy_moves_every_message_once_with_body_attributes_and_group(local_sqs, settings):
    assert redrive.main(["--copy"], sqs=local_sqs) == 0
    queues = redrive.Queues.look_up(local_sqs, settings.queue_name, settings.dlq_name)
    assert redrive.waiting(local_sqs, queues.dlq_url) == 0
    moved = drain(local_sqs, queues.queue_url)
    bodies = sorted(m["Body"] for m in moved)
    assert bodies == sorted(body(n) for n in range(25))  # none lost, none twice
    for message in moved:
        n = json.loads(message["Body"])["n"]
        assert message["MessageAttributes"]["connectionId"]["StringValue"] == f"conn-{n}"
        assert message["Attributes"].get("MessageGroupId") == (f"group-{n % 3}" if settings.fifo else None)


def stubbed_sqs():
    sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return sqs, Stubber(sqs)


def test_move_task_starts_with_both_arns_and_follows_progress_to_completion():
    sqs, stub = stubbed_sqs()
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN})
    for status, moved in (("RUNNING", 3), ("RUNNING", 7), ("COMPLETED", 10)):
        stub.add_response(
            "list_message_move_tasks",
            {"Results": [{"Status": status, "ApproximateNumberOfMessagesMoved": moved, "ApproximateNumberOfMessagesToMove": 10}]},
            {"SourceArn": DLQ_ARN, "MaxResults": 1},
        )
    lines, sleeps = [], []
    with stub:
        assert redrive.move_task(sqs, QUEUES, report=lines.append, sleep=sleeps.append) == 10
    stub.assert_no_pending_responses()
    assert lines == ["Started move task task-1", "RUNNING: 3 of 10 moved", "RUNNING: 7 of 10 moved", "COMPLETED: 10 of 10 moved"]
    assert len(sleeps) == 2


def test_a_failed_move_task_reports_its_reason():
    sqs, stub = stubbed_sqs()
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN})
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [{"Status": "FAILED", "FailureReason": "AWS.SimpleQueueService.KmsAccessDenied"}]},
        {"SourceArn": DLQ_ARN, "MaxResults": 1},
    )
    with stub, pytest.raises(redrive.RedriveFailed, match="FAILED: AWS.SimpleQueueService.KmsAccessDenied"):
        redrive.move_task(sqs, QUEUES, report=lambda line: None, sleep=lambda s: None)


def test_a_refused_move_task_exits_non_zero(local_sqs, settings, monkeypatch, capsys):
    def refuse(**kwargs):
        raise redrive.ClientError({"Error": {"Code": "UnsupportedOperation", "Message": "no move tasks here"}}, "StartMessageMoveTask")

    monkeypatch.setattr(local_sqs, "start_message_move_task", refuse)
    assert redrive.main([], sqs=local_sqs) == 1
    assert "no move tasks here" in capsys.readouterr().err
