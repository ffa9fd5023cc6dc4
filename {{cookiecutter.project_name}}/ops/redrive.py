"""Move the messages of the dead-letter queue back to the work queue, once their cause is fixed.

    make redrive                            # the messages that failed; those the worker rejected stay
    make redrive ARGS=--dry-run             # count both kinds, move nothing
    make redrive ARGS=--include-rejected    # every message, the rejected ones too
    make redrive ARGS=--copy                # receive/send/delete, never a move task (endpoints without, e.g. moto)

Two kinds of message wait in the dead-letter queue. A message that failed dlq_retries times (a bug, an outage) was
moved there by SQS's redrive policy: once the cause is fixed it can pass, so it goes back. A message the worker
rejected (not JSON, against the schema, RejectedMessage) was sent there on its first receive with a DeadLetterReason
attribute (worker/dead_letters.py): it would be rejected again on its first receive, so it stays, unless
--include-rejected.

SQS's message move task moves a whole queue and cannot pick. It runs (with its progress printed until it ends) with
--include-rejected, or when a look at every message of the DLQ found no rejected one; otherwise the messages are
copied, the rejected ones held back. The copy keeps each message's body, message attributes, and on FIFO queues its
group id, and deletes a message from the dead-letter queue only after the work queue accepted it (nothing lost; a
crash in between can at worst leave one batch in both queues). Messages looked at but not moved are hidden while
the run lasts (so that it does not receive them again) and visible again, at once, when it ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.__package_name }}.settings import ANSWERS, Settings

from ops.preflight import NoRegion, aws_session

TERMINAL_STATUSES = {"COMPLETED", "FAILED", "CANCELLED"}
BATCH = 10  # SQS's largest receive and send batch
EMPTY_RECEIVES = 2  # more receives after an empty one while SQS still counts visible messages (see _batches)
BATCH_BYTES = 1024 * 1024  # SQS's largest batch payload (as its largest single message): fill batches by size too
# How long a received dead-letter message stays hidden while it is copied, or held back (then renewed). A message
# of a run that crashed reappears after it.
HOLD_SECONDS = 120
REJECTED = "DeadLetterReason"  # the attribute the worker's rejections carry (worker/dead_letters.py REASON_ATTRIBUTE)


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


def rejected(message: dict) -> bool:
    """Whether the worker rejected the message (moved back, it is rejected again), not failed dlq_retries times."""
    return REJECTED in message.get("MessageAttributes", {})


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


class Held:
    """Messages received from the DLQ that stay there, hidden while a run lasts so that it does not receive them
    again: each hold is renewed before it runs out, and released (the message visible again at once) at the end."""

    def __init__(self, sqs: Any, url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.sqs, self.url, self.clock = sqs, url, clock
        self.handles: dict[str, tuple[str, float]] = {}  # message id -> receipt handle, when it was (re)hidden

    def add(self, message: dict) -> bool:
        """Hold a message just received; False when it was held already (its hold had run out: not a new one)."""
        new = message["MessageId"] not in self.handles
        self.handles[message["MessageId"]] = (message["ReceiptHandle"], self.clock())
        return new

    def renew(self) -> None:
        now = self.clock()
        due = [m for m, (_, since) in self.handles.items() if now - since >= HOLD_SECONDS / 2]
        self._hide(due, HOLD_SECONDS)
        self.handles.update({m: (self.handles[m][0], now) for m in due})

    def release(self) -> None:
        self._hide(list(self.handles), 0)
        self.handles.clear()

    def _hide(self, message_ids: list[str], seconds: int) -> None:
        # A handle whose hold ran out is refused (Failed): that message is visible again anyway.
        for start in range(0, len(message_ids), BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": self.handles[m][0], "VisibilityTimeout": seconds}
                for n, m in enumerate(message_ids[start : start + BATCH])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)


def _receive(sqs: Any, url: str) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=BATCH,
        MessageAttributeNames=["All"],
        AttributeNames=["MessageGroupId", "MessageDeduplicationId"],
        VisibilityTimeout=HOLD_SECONDS,
        WaitTimeSeconds=1,
    ).get("Messages", [])


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _batches(sqs: Any, url: str) -> Iterator[list[dict]]:
    """What the queue gives, receive after receive, until it has nothing left. An empty receive is no proof that the
    queue is empty (a receive may miss messages that are there): it ends only when SQS also counts no visible
    message, or after EMPTY_RECEIVES in a row (what is left is hidden behind a held message of its FIFO group, or
    the approximate count lags)."""
    empty = 0
    while empty <= EMPTY_RECEIVES:
        if received := _receive(sqs, url):
            empty = 0
            yield received
        elif _visible(sqs, url) == 0:
            return
        else:
            empty += 1


@dataclass
class Survey:
    failed: int = 0
    rejected: int = 0
    unseen: int = 0  # waiting but not received: in flight elsewhere, or behind a held message of their FIFO group


def survey(sqs: Any, queues: Queues, *, until_rejected: bool = False) -> Survey:
    """Receive every message of the DLQ and count both kinds (or stop at the first rejected one); then release them.
    On a FIFO queue a message hidden by the count hides the rest of its group: those are counted as unseen."""
    total = waiting(sqs, queues.dlq_url)
    held = Held(sqs, queues.dlq_url)
    counted = Survey()
    try:
        for received in _batches(sqs, queues.dlq_url):
            for message in received:
                if not held.add(message):
                    continue  # seen already: its hold had run out
                if rejected(message):
                    counted.rejected += 1
                else:
                    counted.failed += 1
            held.renew()
            if until_rejected and counted.rejected:
                break
    finally:
        held.release()
    counted.unseen = max(total - counted.failed - counted.rejected, 0)
    return counted


def copy_messages(
    sqs: Any, queues: Queues, *, fifo: bool, include_rejected: bool = False, report: Callable[[str], None] = print
) -> int:
    """Receive from the DLQ, send to the queue with body and attributes intact, then delete. Rejected messages stay
    in the DLQ unless include_rejected. Returns the count moved.

    A held message would hide the rest of its group on a FIFO queue, so there a rejected message is sent to the end
    of the DLQ instead (same body, attributes and group; a new message id), and held only when it comes round."""
    held = Held(sqs, queues.dlq_url)
    requeued: set[str] = set()  # FIFO: the new ids of rejected messages sent to the end of the DLQ
    moved = left = 0
    try:
        for received in _batches(sqs, queues.dlq_url):
            stay = [m for m in received if rejected(m) and not include_rejected]
            back = [m for m in received if m not in stay]
            to_end = [m for m in stay if fifo and m["MessageId"] not in requeued]  # FIFO, first time round
            for message in stay:
                if message not in to_end and held.add(message) and not fifo:
                    left += 1  # (on FIFO it was counted when sent to the end)
            if back:
                moved += len(_send_then_delete(sqs, back, queues.queue_url, queues.dlq_url, fifo))
                report(f"{moved} moved")
            new_ids = _send_then_delete(sqs, to_end, queues.dlq_url, queues.dlq_url, fifo)
            requeued.update(new_ids)
            left += len(new_ids)
            held.renew()
    finally:
        held.release()
    report(f"Done: {moved} moved" + (f"; {left} rejected left in the dead-letter queue" if left else ""))
    return moved


def _send_then_delete(sqs: Any, messages: list[dict], to_url: str, from_url: str, fifo: bool) -> list[str]:
    """Send the messages to to_url, delete each one sent from from_url; the ids the sent messages got there."""
    new_ids = []
    for batch in _by_size(messages):
        entries = {str(n): message for n, message in enumerate(batch)}
        sent = sqs.send_message_batch(QueueUrl=to_url, Entries=[_entry(n, m, fifo) for n, m in entries.items()])
        done = [entries[result["Id"]] for result in sent.get("Successful", [])]
        if done:  # delete what the queue took before anything else can go wrong: no duplicates on a rerun
            sqs.delete_message_batch(
                QueueUrl=from_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )
        new_ids += [result["MessageId"] for result in sent.get("Successful", [])]
        if sent.get("Failed"):
            raise RedriveFailed(f"the queue refused {len(sent['Failed'])} message(s): {sent['Failed']}")
    return new_ids


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
    parser.add_argument("--dry-run", action="store_true", help="count the failed and the rejected messages, move none")
    parser.add_argument(
        "--include-rejected", action="store_true", help=f"move the messages the worker rejected ({REJECTED}) too"
    )
    parser.add_argument("--copy", action="store_true", help="receive/send/delete instead of a move task")
    parser.add_argument("--endpoint-url", default=None, help="SQS endpoint (e.g. the local emulator)")
    args = parser.parse_args(argv)
    settings = ANSWERS.for_stage(args.stage)
    try:
        if sqs is None:
            session, region = aws_session()
            sqs = session.client("sqs", region_name=region, endpoint_url=args.endpoint_url)
        redrive(sqs, settings, args)
    except (NoRegion, RedriveFailed, ClientError, BotoCoreError) as error:  # one line, no traceback
        print(f"Redrive failed: {error}", file=sys.stderr)
        return 1
    return 0


def redrive(sqs: Any, settings: Settings, args: argparse.Namespace) -> None:
    queues = Queues.look_up(sqs, settings.queue_name, settings.dlq_name)
    count = waiting(sqs, queues.dlq_url)
    print(f"{count} message(s) wait in {settings.dlq_name}")
    if count == 0:
        return
    if args.dry_run:
        found = survey(sqs, queues)
        unseen = (
            f", {found.unseen} not looked at (in flight, or behind those in their FIFO group)" if found.unseen else ""
        )
        print(
            f"{found.failed} failed {settings.dlq_retries} times (make redrive moves them), {found.rejected} rejected "
            f"by the worker ({REJECTED}; moved only with --include-rejected){unseen}"
        )
    elif not args.copy and (args.include_rejected or only_failed(sqs, queues)):
        move_task(sqs, queues)
    else:
        copy_messages(sqs, queues, fifo=settings.fifo, include_rejected=args.include_rejected)


def only_failed(sqs: Any, queues: Queues) -> bool:
    """Whether a look at every message of the DLQ found none the worker rejected: the move task, which moves them all,
    may run then. (One the worker rejects between the look and the task moves too, and is rejected again.)"""
    found = survey(sqs, queues, until_rejected=True)
    if found.rejected or found.unseen:
        print(f"Copying the failed messages; those the worker rejected stay ({REJECTED}; --include-rejected)")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
