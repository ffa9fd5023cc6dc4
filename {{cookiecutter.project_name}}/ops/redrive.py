"""Move the messages of the dead-letter queue back to the work queue, once their cause is fixed.

    make redrive                    # SQS's own move task, with progress until it ends
    make redrive ARGS=--dry-run     # only count what would move
    make redrive ARGS=--copy        # receive/send/delete instead (endpoints without move tasks, e.g. moto)

The copy fallback keeps each message's body, message attributes, and on FIFO queues its group id, and deletes a
message from the dead-letter queue only after the work queue accepted it (nothing lost; a crash in between can at
worst leave one batch in both queues).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from {{ cookiecutter.__package_name }}.settings import ANSWERS

TERMINAL_STATUSES = {"COMPLETED", "FAILED", "CANCELLED"}
BATCH = 10  # SQS's largest receive and send batch
BATCH_BYTES = 1024 * 1024  # SQS's largest batch payload (as its largest single message): fill batches by size too
HOLD_SECONDS = 120  # how long a received dead-letter message stays hidden while it is copied (then it reappears)


class RedriveFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Queues:
    queue_url: str
    dlq_url: str
    queue_arn: str
    dlq_arn: str

    @classmethod
    def look_up(cls, sqs: Any, queue_name: str, dlq_name: str) -> Queues:
        queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        return cls(queue_url, dlq_url, _arn(sqs, queue_url), _arn(sqs, dlq_url))


def _arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def waiting(sqs: Any, url: str) -> int:
    """Messages in the queue, including those received but not yet deleted (e.g. by an interrupted redrive)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def move_task(
    sqs: Any,
    queues: Queues,
    *,
    report: Callable[[str], None] = print,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Start SQS's message move task from the DLQ to the queue and follow it to its end. Returns the moved count.

    ListMessageMoveTasks returns the source's recent tasks (up to 10), and names a task's TaskHandle only while it
    runs; an earlier task may be listed first. So this run's task is the one with its handle, or, once finished,
    the one whose start time was not listed before it started (SQS runs one move task per source at a time).
    """
    earlier = {task["StartedTimestamp"] for task in _move_tasks(sqs, queues)}
    handle = sqs.start_message_move_task(SourceArn=queues.dlq_arn, DestinationArn=queues.queue_arn)["TaskHandle"]
    report(f"Started move task {handle}")
    while True:
        tasks = _move_tasks(sqs, queues)
        ours = [t for t in tasks if t.get("TaskHandle") == handle] or sorted(
            (t for t in tasks if t["StartedTimestamp"] not in earlier), key=lambda t: t["StartedTimestamp"]
        )
        if not ours:  # right after the start it may not be listed yet
            sleep(poll_seconds)
            continue
        status = ours[0]
        moved, total = (
            status.get("ApproximateNumberOfMessagesMoved", 0),
            status.get("ApproximateNumberOfMessagesToMove"),
        )
        report(f"{status['Status']}: {moved} of {total if total is not None else '?'} moved")
        if status["Status"] == "COMPLETED":
            return moved
        if status["Status"] in TERMINAL_STATUSES:
            raise RedriveFailed(f"move task {status['Status']}: {status.get('FailureReason', 'no reason given')}")
        sleep(poll_seconds)


def _move_tasks(sqs: Any, queues: Queues) -> list[dict]:
    return sqs.list_message_move_tasks(SourceArn=queues.dlq_arn, MaxResults=10)["Results"]


def copy_messages(sqs: Any, queues: Queues, *, fifo: bool, report: Callable[[str], None] = print) -> int:
    """Receive from the DLQ, send to the queue with body and attributes intact, then delete. Returns the count."""
    moved = 0
    while True:
        received = sqs.receive_message(
            QueueUrl=queues.dlq_url,
            MaxNumberOfMessages=BATCH,
            MessageAttributeNames=["All"],
            AttributeNames=["MessageGroupId", "MessageDeduplicationId"],
            VisibilityTimeout=HOLD_SECONDS,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not received:
            report(f"Done: {moved} moved")
            return moved
        for batch in _by_size(received):
            entries = {str(n): message for n, message in enumerate(batch)}
            sent = sqs.send_message_batch(
                QueueUrl=queues.queue_url, Entries=[_entry(n, m, fifo) for n, m in entries.items()]
            )
            done = [entries[result["Id"]] for result in sent.get("Successful", [])]
            if done:  # delete what the queue took before anything else can go wrong: no duplicates on a rerun
                sqs.delete_message_batch(
                    QueueUrl=queues.dlq_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
                )
            moved += len(done)
            if sent.get("Failed"):
                raise RedriveFailed(f"the queue refused {len(sent['Failed'])} message(s): {sent['Failed']}")
        report(f"{moved} moved")


def _by_size(messages: list[dict]) -> list[list[dict]]:
    """Split received messages into send batches that stay under SQS's batch payload limit."""
    batches: list[list[dict]] = [[]]
    size = 0
    for message in messages:
        message_size = _size(message)
        if batches[-1] and size + message_size > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += message_size
    return [batch for batch in batches if batch]


def _size(message: dict) -> int:
    """Bytes SQS counts for a message: the body plus each attribute's name, type and value."""
    attributes = message.get("MessageAttributes", {})
    return len(message["Body"].encode()) + sum(
        len(name.encode())
        + len(value["DataType"].encode())
        + len(value.get("StringValue", "").encode())
        + len(value.get("BinaryValue", b""))
        for name, value in attributes.items()
    )


def _entry(entry_id: str, message: dict, fifo: bool) -> dict:
    entry = {"Id": entry_id, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    if fifo:
        attributes = message.get("Attributes", {})
        entry["MessageGroupId"] = attributes["MessageGroupId"]
        # The original id would be dropped as a duplicate within SQS's five-minute window; the message id is unique.
        entry["MessageDeduplicationId"] = f"redrive-{message['MessageId']}"
    return entry


def main(argv: list[str] | None = None, *, sqs: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=None, help=f"stage to redrive (default {ANSWERS.stage})")
    parser.add_argument("--dry-run", action="store_true", help="print how many messages wait, move nothing")
    parser.add_argument("--copy", action="store_true", help="receive/send/delete instead of a move task")
    parser.add_argument("--endpoint-url", default=None, help="SQS endpoint (e.g. the local emulator)")
    args = parser.parse_args(argv)
    settings = ANSWERS.for_stage(args.stage)
    sqs = sqs or boto3.client("sqs", endpoint_url=args.endpoint_url)
    queues = Queues.look_up(sqs, settings.queue_name, settings.dlq_name)

    count = waiting(sqs, queues.dlq_url)
    print(f"{count} message(s) wait in {settings.dlq_name}")
    if args.dry_run or count == 0:
        return 0
    try:
        if args.copy:
            copy_messages(sqs, queues, fifo=settings.fifo)
        else:
            move_task(sqs, queues)
    except (RedriveFailed, ClientError) as error:
        print(f"Redrive failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
