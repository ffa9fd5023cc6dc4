"""make redrive: the copy fallback against the local SQS (moto server), the move-task path against a Stubber. Messages
the worker rejected are made by the worker's own code (dead_letters.send), so the attribute redrive tells them by is
the one the worker writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.stub import Stubber
from moto import mock_aws

import dead_letters
from local.sqs import QueueSpec
from ops import redrive
from test_worker import record

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
    assert redrive.main(["--include-rejected"], sqs=local_sqs) == 1
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


SQS_BATCH_PAYLOAD_BYTES = 1_048_576  # SendMessageBatch: the sum of the messages' bodies and attributes


def test_large_messages_are_sent_in_batches_under_the_sqs_payload_limit():
    """Sizes counted as SQS counts them (body, and each attribute's name, type and value), not by redrive's own."""
    attributes = {"connectionId": {"DataType": "String", "StringValue": "c" * 1000}}
    messages = [{"MessageId": str(n), "Body": "x" * 262_000, "MessageAttributes": attributes} for n in range(10)]
    size = 262_000 + len("connectionId") + len("String") + 1000  # 263,018 bytes: four would be 1,052,072
    batches = redrive._by_size(messages)
    assert [m for batch in batches for m in batch] == messages  # all of them, in order
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert all(len(batch) * size <= SQS_BATCH_PAYLOAD_BYTES for batch in batches)


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


# --- the two kinds of dead letter: failed dlq_retries times (moved back) and rejected by the worker (left) ----------


def reject(sqs, dlq_url: str, body: str, *, group: str | None, monkeypatch) -> None:
    """What the worker does with a message that can never pass: dead_letters.send, with its reason."""
    monkeypatch.setenv(dead_letters.URL_VARIABLE, dlq_url)
    monkeypatch.setattr(dead_letters, "sqs_client", lambda: sqs)
    dead_letters.send(SQSRecord(record(body, group=group)), "not an object: schema violation")


def fail(sqs, dlq_url: str, body: str, *, group: str | None, n: int) -> None:
    """A message SQS's redrive policy dead-lettered after dlq_retries receives: its own attributes, no reason."""
    extra = {"MessageGroupId": group, "MessageDeduplicationId": f"failed-{n}"} if group else {}
    attributes = {"connectionId": {"DataType": "String", "StringValue": f"conn-{n}"}}
    sqs.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes=attributes, **extra)


@dataclass
class MotoQueues:
    client: Any
    url: str
    dlq_url: str


@pytest.fixture
def moto_queues(expected) -> Iterator[MotoQueues]:
    """The project's queue and DLQ, empty, in moto in this process (a redrive that holds messages back changes their
    visibility: ChangeMessageVisibility)."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        fifo = {"FifoQueue": "true"} if expected.fifo else {}
        dlq_url = sqs.create_queue(QueueName=expected.dlq_name, Attributes=fifo)["QueueUrl"]
        url = sqs.create_queue(QueueName=expected.queue_name, Attributes=fifo)["QueueUrl"]
        yield MotoQueues(sqs, url, dlq_url)


@pytest.fixture
def mixed_dlq(moto_queues, expected, monkeypatch) -> MotoQueues:
    """The DLQ holds 7 failed messages and 4 rejected ones, in two groups on FIFO. Move tasks are out of reach, as
    they would move the rejected messages too (and moto has none)."""
    sqs = moto_queues.client
    for n in range(11):
        group = f"g{n % 2}" if expected.fifo else None
        if n % 3 == 1:
            reject(sqs, moto_queues.dlq_url, body(n), group=group, monkeypatch=monkeypatch)
        else:
            fail(sqs, moto_queues.dlq_url, body(n), group=group, n=n)

    def no_move_task(**kwargs):
        raise AssertionError("a move task would move the rejected messages too")

    monkeypatch.setattr(sqs, "start_message_move_task", no_move_task)
    return moto_queues


REJECTED_NUMBERS = [1, 4, 7, 10]
FAILED_NUMBERS = [0, 2, 3, 5, 6, 8, 9]


def numbers(messages: list[dict]) -> list[int]:
    return sorted(json.loads(m["Body"])["n"] for m in messages)


def test_by_default_only_the_failed_messages_move_and_the_rejected_ones_stay(mixed_dlq, expected, capsys):
    assert redrive.main([], sqs=mixed_dlq.client) == 0
    moved = drain(mixed_dlq.client, mixed_dlq.url)
    assert numbers(moved) == FAILED_NUMBERS
    assert all(redrive.REJECTED not in m.get("MessageAttributes", {}) for m in moved)
    # The rejected ones are visible again at once, reason and group intact: nothing waits for a hold to run out.
    left = drain(mixed_dlq.client, mixed_dlq.dlq_url)
    assert numbers(left) == REJECTED_NUMBERS
    for message in left:
        assert message["MessageAttributes"][redrive.REJECTED]["StringValue"] == "not an object: schema violation"
        n = json.loads(message["Body"])["n"]
        assert message["Attributes"].get("MessageGroupId") == (f"g{n % 2}" if expected.fifo else None)
    out = capsys.readouterr().out
    assert "Done: 7 moved; 4 rejected left in the dead-letter queue" in out


class Unlucky:
    """The SQS client, except that its first receives come back empty although messages wait (SQS may answer so)."""

    def __init__(self, sqs: Any, empty_receives: int) -> None:
        self.sqs, self.empty_receives = sqs, empty_receives

    def receive_message(self, **arguments: Any) -> dict:
        if self.empty_receives:
            self.empty_receives -= 1
            return {}
        return self.sqs.receive_message(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


@pytest.mark.parametrize("arguments", [["--copy"], ["--dry-run"]], ids=["copy", "dry-run"])
def test_an_empty_receive_while_messages_wait_does_not_end_the_run(mixed_dlq, arguments, capsys):
    if arguments == ["--dry-run"]:  # what a run that is never answered empty counts
        assert redrive.main(arguments, sqs=mixed_dlq.client) == 0
    lucky = capsys.readouterr().out
    sqs = Unlucky(mixed_dlq.client, empty_receives=redrive.EMPTY_RECEIVES)
    assert redrive.main(arguments, sqs=sqs) == 0
    if arguments == ["--copy"]:
        assert numbers(drain(mixed_dlq.client, mixed_dlq.url)) == FAILED_NUMBERS
    else:
        assert capsys.readouterr().out == lucky and "rejected by the worker" in lucky


def test_the_copy_path_leaves_the_rejected_messages_too(mixed_dlq):
    assert redrive.main(["--copy"], sqs=mixed_dlq.client) == 0
    assert numbers(drain(mixed_dlq.client, mixed_dlq.url)) == FAILED_NUMBERS
    assert numbers(drain(mixed_dlq.client, mixed_dlq.dlq_url)) == REJECTED_NUMBERS


def test_include_rejected_moves_every_message_with_its_reason(mixed_dlq):
    assert redrive.main(["--include-rejected", "--copy"], sqs=mixed_dlq.client) == 0
    moved = drain(mixed_dlq.client, mixed_dlq.url)
    assert numbers(moved) == sorted(FAILED_NUMBERS + REJECTED_NUMBERS)
    assert numbers([m for m in moved if redrive.REJECTED in m["MessageAttributes"]]) == REJECTED_NUMBERS
    assert redrive.waiting(mixed_dlq.client, mixed_dlq.dlq_url) == 0


def test_include_rejected_uses_the_move_task_which_moves_everything(mixed_dlq, monkeypatch):
    started = []
    monkeypatch.setattr(redrive, "move_task", lambda sqs, queues: started.append(queues.dlq_arn) or 11)
    assert redrive.main(["--include-rejected"], sqs=mixed_dlq.client) == 0
    assert len(started) == 1


def test_dry_run_counts_both_kinds_and_moves_nothing(mixed_dlq, expected, capsys):
    assert redrive.main(["--dry-run"], sqs=mixed_dlq.client) == 0
    out = capsys.readouterr().out
    assert f"11 message(s) wait in {expected.dlq_name}" in out
    [counts] = [line for line in out.splitlines() if "rejected by the worker" in line]
    assert f" failed {expected.max_receive_count} times (make redrive moves them), " in counts
    failed, rejected, *unseen = map(int, re.findall(r"(\d+) (?:failed|rejected|not looked at)", counts))
    if expected.fifo:  # the rest of a group stays hidden behind its first messages while they are counted
        assert failed + rejected + sum(unseen) == 11 and unseen
    else:
        assert (failed, rejected, unseen) == (7, 4, [])
    assert redrive.waiting(mixed_dlq.client, mixed_dlq.url) == 0
    # Every message is still there, and visible: the count's holds were released.
    assert numbers(drain(mixed_dlq.client, mixed_dlq.dlq_url)) == list(range(11))


def test_the_move_task_runs_when_every_message_failed(moto_queues, expected, monkeypatch):
    sqs = moto_queues.client
    for n in range(6):
        fail(sqs, moto_queues.dlq_url, body(n), group="g" if expected.fifo else None, n=n)
    started = []
    monkeypatch.setattr(redrive, "move_task", lambda sqs, queues: started.append(queues.dlq_arn) or 6)
    assert redrive.main([], sqs=sqs) == 0
    assert len(started) == 1
    # The look released what it held: every message visible, for the task to move.
    assert numbers(drain(sqs, moto_queues.dlq_url)) == list(range(6))


def test_fifo_a_rejected_message_does_not_hold_back_the_failed_ones_behind_it(monkeypatch):
    """On a FIFO queue a message held in flight hides the rest of its group: a rejected one at the head of a group
    goes to the end of the DLQ instead, and the 12 failed messages behind it move, in their order."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        fifo = {"FifoQueue": "true"}
        dlq_url = sqs.create_queue(QueueName="held-dlq.fifo", Attributes=fifo)["QueueUrl"]
        queue_url = sqs.create_queue(QueueName="held-queue.fifo", Attributes=fifo)["QueueUrl"]
        reject(sqs, dlq_url, body(0), group="g", monkeypatch=monkeypatch)
        for n in range(1, 13):
            fail(sqs, dlq_url, body(n), group="g", n=n)
        reject(sqs, dlq_url, body(13), group="g", monkeypatch=monkeypatch)
        queues = redrive.Queues.look_up(sqs, "held-queue.fifo", "held-dlq.fifo")
        lines = []
        assert redrive.copy_messages(sqs, queues, fifo=True, report=lines.append) == 12
        assert [json.loads(m["Body"])["n"] for m in drain(sqs, queue_url)] == list(range(1, 13))
        left = drain(sqs, dlq_url)
    assert [json.loads(m["Body"])["n"] for m in left] == [0, 13]
    assert all(redrive.REJECTED in m["MessageAttributes"] for m in left)
    assert lines[-1] == "Done: 12 moved; 2 rejected left in the dead-letter queue"


def test_a_long_run_renews_its_holds_before_they_run_out_and_releases_them_at_the_end():
    sqs, stub = stubbed_sqs()
    now = [0.0]
    held = redrive.Held(sqs, QUEUES.dlq_url, clock=lambda: now[0])
    held.add({"MessageId": "a", "ReceiptHandle": "ra"})
    now[0] = redrive.HOLD_SECONDS / 2 - 1
    held.add({"MessageId": "b", "ReceiptHandle": "rb"})
    held.renew()  # nothing is due yet: no call
    now[0] = redrive.HOLD_SECONDS / 2
    renewed = {
        "QueueUrl": QUEUES.dlq_url,
        "Entries": [{"Id": "0", "ReceiptHandle": "ra", "VisibilityTimeout": redrive.HOLD_SECONDS}],
    }
    stub.add_response("change_message_visibility_batch", {"Successful": [{"Id": "0"}], "Failed": []}, renewed)
    released = {
        "QueueUrl": QUEUES.dlq_url,
        "Entries": [
            {"Id": "0", "ReceiptHandle": "ra", "VisibilityTimeout": 0},
            {"Id": "1", "ReceiptHandle": "rb", "VisibilityTimeout": 0},
        ],
    }
    stub.add_response(
        "change_message_visibility_batch", {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []}, released
    )
    with stub:
        held.renew()
        assert held.add({"MessageId": "a", "ReceiptHandle": "ra"}) is False  # came round again: not a new message
        held.release()
    stub.assert_no_pending_responses()
