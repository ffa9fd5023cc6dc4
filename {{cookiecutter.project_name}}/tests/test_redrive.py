"""make redrive: the copy fallback against the local SQS (moto server), the move-task path against a Stubber."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import boto3
import pytest
from botocore.stub import Stubber

from local.sqs import QueueSpec
from ops import redrive

REGION = "eu-west-1"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:queue"
QUEUES = redrive.Queues("https://queue", "https://dlq", QUEUE_ARN, DLQ_ARN)


def body(n: int) -> str:
    return json.dumps({"n": n, "text": "ünïcode & = +"}, ensure_ascii=False)


@pytest.fixture
def local_sqs(local_queues, expected):
    """The real queue names in the local SQS; the DLQ holds 25 messages with attributes (and groups on FIFO)."""
    fifo = expected.fifo
    for n in range(25):
        extra = {"MessageGroupId": f"group-{n % 3}", "MessageDeduplicationId": f"d{n}"} if fifo else {}
        local_queues.client.send_message(
            QueueUrl=local_queues.dlq_url,
            MessageBody=body(n),
            MessageAttributes={"connectionId": {"DataType": "String", "StringValue": f"conn-{n}"}},
            **extra,
        )
    return local_queues.client


def drain(sqs, url) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return messages


def test_dry_run_counts_and_moves_nothing(local_sqs, expected, capsys):
    assert redrive.main(["--dry-run"], sqs=local_sqs) == 0
    assert f"25 message(s) wait in {expected.dlq_name}" in capsys.readouterr().out
    queues = redrive.Queues.look_up(local_sqs, expected.queue_name, expected.dlq_name)
    assert redrive.waiting(local_sqs, queues.dlq_url) == 25
    assert redrive.waiting(local_sqs, queues.queue_url) == 0


def test_copy_moves_every_message_once_with_body_attributes_and_group(local_sqs, expected):
    assert redrive.main(["--copy"], sqs=local_sqs) == 0
    queues = redrive.Queues.look_up(local_sqs, expected.queue_name, expected.dlq_name)
    assert redrive.waiting(local_sqs, queues.dlq_url) == 0
    moved = drain(local_sqs, queues.queue_url)
    bodies = sorted(m["Body"] for m in moved)
    assert bodies == sorted(body(n) for n in range(25))  # none lost, none twice
    for message in moved:
        n = json.loads(message["Body"])["n"]
        assert message["MessageAttributes"]["connectionId"]["StringValue"] == f"conn-{n}"
        assert message["Attributes"].get("MessageGroupId") == (f"group-{n % 3}" if expected.fifo else None)


def stubbed_sqs():
    sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return sqs, Stubber(sqs)


# An earlier task of the same source, finished: ListMessageMoveTasks lists it, without a TaskHandle.
EARLIER = {"Status": "COMPLETED", "StartedTimestamp": 1000, "ApproximateNumberOfMessagesMoved": 99}


def task(status: str, moved: int, *, started: int = 2000, handle: str | None = "task-1", **extra) -> dict:
    """A ListMessageMoveTasks result entry; SQS names the TaskHandle only while the task runs."""
    entry = {"Status": status, "StartedTimestamp": started, "ApproximateNumberOfMessagesMoved": moved, **extra}
    entry.setdefault("ApproximateNumberOfMessagesToMove", 10)
    if status == "RUNNING" and handle:
        entry["TaskHandle"] = handle
    return entry


def stub_move_task(stub, *listings: list[dict]) -> None:
    """The calls of one redrive: the tasks listed before the start, the start, then each listing while it runs."""
    listed = {"SourceArn": DLQ_ARN, "MaxResults": 10}
    stub.add_response("list_message_move_tasks", {"Results": [EARLIER]}, listed)
    stub.add_response(
        "start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN}
    )
    for results in listings:
        stub.add_response("list_message_move_tasks", {"Results": results}, listed)


def test_move_task_starts_with_both_arns_and_follows_progress_to_completion():
    sqs, stub = stubbed_sqs()
    stub_move_task(stub, [task("RUNNING", 3), EARLIER], [task("RUNNING", 7), EARLIER], [task("COMPLETED", 10), EARLIER])
    lines, sleeps = [], []
    with stub:
        assert redrive.move_task(sqs, QUEUES, report=lines.append, sleep=sleeps.append) == 10
    stub.assert_no_pending_responses()
    assert lines == [
        "Started move task task-1",
        "RUNNING: 3 of 10 moved",
        "RUNNING: 7 of 10 moved",
        "COMPLETED: 10 of 10 moved",
    ]
    assert len(sleeps) == 2


def test_an_earlier_task_listed_first_is_not_mistaken_for_this_one():
    sqs, stub = stubbed_sqs()
    stub_move_task(stub, [EARLIER], [EARLIER, task("RUNNING", 5)], [EARLIER, task("COMPLETED", 10)])
    lines = []
    with stub:
        assert redrive.move_task(sqs, QUEUES, report=lines.append, sleep=lambda s: None) == 10
    assert lines == ["Started move task task-1", "RUNNING: 5 of 10 moved", "COMPLETED: 10 of 10 moved"]


def test_a_task_that_finished_before_it_was_first_listed_is_still_found():
    sqs, stub = stubbed_sqs()
    stub_move_task(stub, [], [task("COMPLETED", 4, ApproximateNumberOfMessagesToMove=4), EARLIER])
    with stub:
        assert redrive.move_task(sqs, QUEUES, report=lambda line: None, sleep=lambda s: None) == 4
    stub.assert_no_pending_responses()


def test_a_failed_move_task_reports_its_reason():
    sqs, stub = stubbed_sqs()
    stub_move_task(stub, [task("FAILED", 0, FailureReason="AWS.SimpleQueueService.KmsAccessDenied"), EARLIER])
    with stub, pytest.raises(redrive.RedriveFailed, match="FAILED: AWS.SimpleQueueService.KmsAccessDenied"):
        redrive.move_task(sqs, QUEUES, report=lambda line: None, sleep=lambda s: None)


def test_a_refused_move_task_exits_non_zero(local_sqs, monkeypatch, capsys):
    def refuse(**kwargs):
        raise redrive.ClientError(
            {"Error": {"Code": "UnsupportedOperation", "Message": "no move tasks here"}}, "StartMessageMoveTask"
        )

    monkeypatch.setattr(local_sqs, "list_message_move_tasks", refuse)
    monkeypatch.setattr(local_sqs, "start_message_move_task", refuse)
    assert redrive.main([], sqs=local_sqs) == 1
    assert "no move tasks here" in capsys.readouterr().err


def test_messages_held_by_an_interrupted_redrive_still_count(local_sqs, expected):
    queues = redrive.Queues.look_up(local_sqs, expected.queue_name, expected.dlq_name)
    local_sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=300)
    assert redrive.waiting(local_sqs, queues.dlq_url) == 25


def test_a_partly_refused_batch_deletes_only_what_the_queue_took_then_stops():
    sqs, stub = stubbed_sqs()
    received = [
        {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": f"body {n}", "Attributes": {}} for n in range(3)
    ]
    stub.add_response("receive_message", {"Messages": received})
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [
                {"Id": "0", "MessageId": "n0", "MD5OfMessageBody": "x"},
                {"Id": "2", "MessageId": "n2", "MD5OfMessageBody": "x"},
            ],
            "Failed": [{"Id": "1", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "no"}],
        },
    )
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
        {
            "QueueUrl": QUEUES.dlq_url,
            "Entries": [{"Id": "0", "ReceiptHandle": "r0"}, {"Id": "1", "ReceiptHandle": "r2"}],
        },
    )
    with stub, pytest.raises(redrive.RedriveFailed, match="refused 1 message"):
        redrive.copy_messages(sqs, QUEUES, fifo=False, report=lambda line: None)
    stub.assert_no_pending_responses()


def test_large_messages_are_sent_in_batches_under_the_sqs_payload_limit():
    messages = [{"MessageId": str(n), "Body": "x" * 200_000, "MessageAttributes": {}} for n in range(10)]
    batches = redrive._by_size(messages)
    assert [m for batch in batches for m in batch] == messages  # all of them, in order
    assert all(sum(redrive._size(m) for m in batch) <= redrive.BATCH_BYTES for batch in batches)
    assert len(batches) == 2


def test_reading_the_settings_does_not_start_the_cdk():
    code = "import sys, ops.redrive; assert 'aws_cdk' not in sys.modules, 'redrive imported the CDK'"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_copy_keeps_the_order_within_each_fifo_group_and_a_rerun_adds_no_duplicate(local_sqs_server):
    """FIFO: the work queue gets each group's messages in the order they failed. A rerun after a crash between the
    send and the delete sends the same deduplication ids again, which SQS drops (5-minute window)."""
    fifo = {"FifoQueue": "true"}
    urls = local_sqs_server.recreate([QueueSpec("order-dlq.fifo", fifo), QueueSpec("order-queue.fifo", fifo)])
    dlq_url, queue_url = urls["order-dlq.fifo"], urls["order-queue.fifo"]
    sqs = local_sqs_server.client
    for n in range(12):
        sqs.send_message(
            QueueUrl=dlq_url, MessageBody=body(n), MessageGroupId=f"g{n % 2}", MessageDeduplicationId=f"d{n}"
        )
    queues = redrive.Queues.look_up(sqs, "order-queue.fifo", "order-dlq.fifo")
    sent = []
    original_send = sqs.send_message_batch

    def send_then_crash_once(**kwargs):
        answer = original_send(**kwargs)
        sent.append(kwargs["Entries"])
        if len(sent) == 1:
            raise RuntimeError("crash after the first send, before its delete")
        return answer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqs, "send_message_batch", send_then_crash_once)
        patch.setattr(redrive, "HOLD_SECONDS", 1)
        with pytest.raises(RuntimeError):
            redrive.copy_messages(sqs, queues, fifo=True, report=lambda line: None)
    time.sleep(1.2)  # the crashed batch reappears in the DLQ, as it would after HOLD_SECONDS
    redrive.copy_messages(sqs, queues, fifo=True, report=lambda line: None)
    moved = drain(sqs, queue_url)
    numbers = [json.loads(m["Body"])["n"] for m in moved]
    assert sorted(numbers) == list(range(12))  # every message once: the rerun's copies were deduplicated
    for group in (0, 1):
        in_group = [n for n in numbers if n % 2 == group]
        assert in_group == sorted(in_group), f"group g{group} out of order: {in_group}"
