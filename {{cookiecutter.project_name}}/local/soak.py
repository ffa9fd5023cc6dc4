"""`python -m local.soak`: many messages through the local pipeline, some poison; how fast, and whether any is lost.

It starts the emulator on free ports for the stack in cdk.out (as `make local` does), sends the messages through the
API with the stage throttle lifted (this measures the pipeline behind it, not the throttle), waits until each one
is processed or in the dead-letter queue, and prints the figures. Poison messages are ones the sample logic fails
on every time (`{"fail": true}`), so each is retried dlq_retries times; with your own logic, make sure it fails on
those too, or count them as processed.
The message-safety tests (tests/test_local.py) use `Tally` to decide what became of each message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .emulator import Emulator, Options


def poison(tag: str) -> str:
    """A message the sample logic fails on every time (worker/logic.py), unique: retried dlq_retries times."""
    return json.dumps({"fail": True, "test": tag, "id": str(uuid.uuid4())})


def rejected(tag: str) -> str:
    """A message the sample logic rejects, unique: it goes to the dead-letter queue on its first receive."""
    return json.dumps({"reject": True, "test": tag, "id": str(uuid.uuid4())})


def good(tag: str) -> str:
    return json.dumps({"test": tag, "id": str(uuid.uuid4())})


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def unthrottled(api: Any) -> Iterator[None]:
    """The stage throttle lifted for a while (the API's token bucket)."""
    rate, burst = api.throttle.rate, api.throttle.burst
    api.throttle.rate, api.throttle.burst = 1e9, 10**9
    try:
        yield
    finally:
        api.throttle.rate, api.throttle.burst = rate, burst


@dataclass
class Tally:
    """What became of each message body: handed to the worker (the pollers' record), or dead-lettered."""

    emulator: Emulator
    dead: dict[str, dict[str, Any]] = field(default_factory=dict)  # body -> the message read from the DLQ
    _by_body: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list), repr=False)
    _indexed: int = field(default=0, repr=False)

    def deliveries(self, body: str) -> list[Any]:
        """Every time the body was handed to the worker, in order (indexed as the pollers record them)."""
        recorded = self.emulator.poller.deliveries
        for delivery in recorded[self._indexed : len(recorded)]:
            self._by_body[delivery.body].append(delivery)
        self._indexed = len(recorded)
        return list(self._by_body.get(body, []))

    def processed(self, body: str) -> bool:
        return any(d.deleted for d in self.deliveries(body))

    def finished_at(self, body: str) -> float:
        return next(d.at for d in self.deliveries(body) if d.deleted)

    def read_dead_letters(self) -> None:
        """Take what the dead-letter queue holds now out of it (a FIFO group in flight would hide the rest)."""
        sqs = self.emulator.sqs.client
        dlq = self.emulator.queue_urls[self.emulator.settings.dlq_name]
        answer = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            self.dead[message["Body"]] = message
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])

    def settled(self, bodies: list[str]) -> bool:
        self.read_dead_letters()
        return all(self.processed(b) or b in self.dead for b in bodies)

    def lost(self, bodies: list[str]) -> list[str]:
        return [b for b in bodies if not self.processed(b) and b not in self.dead]

    def duplicates(self, bodies: list[str]) -> int:
        """Extra successful deliveries (a message processed twice)."""
        return sum(max(0, sum(d.deleted for d in self.deliveries(b)) - 1) for b in bodies)

    def processing_order(self, bodies: list[str]) -> list[str]:
        """The bodies that were processed, in the order the worker finished them (within one batch, the batch's
        order)."""
        position = {id(d): n for n, d in enumerate(self.emulator.poller.deliveries)}
        done = [d for b in bodies for d in self.deliveries(b) if d.deleted]
        return [d.body for d in sorted(done, key=lambda d: (d.at, position[id(d)]))]

    def out_of_order(self, groups: dict[str, list[str]]) -> list[str]:
        """The groups whose processed messages were not processed in the order they were sent."""
        return [
            group
            for group, sent in groups.items()
            if self.processing_order(sent) != [b for b in sent if self.processed(b)]
        ]

    def wrong_redeliveries(self, bodies: list[str]) -> int:
        """Deliveries the pipeline must never make: of a message already deleted, or while an earlier delivery of it
        was still in its invocation. The pollers keep what they receive hidden for as long as its invocation may
        run (as the deployed 6 x ratio does), so only a failed or timed-out delivery comes back."""
        count = 0
        for body in bodies:
            trips = sorted(self.deliveries(body), key=lambda d: d.received)
            for earlier, later in zip(trips, trips[1:], strict=False):
                count += earlier.deleted or later.received < earlier.at
        return count


def soak(tally: Tally, messages: int, poison_every: int, groups: int, timeout: float) -> dict[str, Any]:
    """Send `messages` through the emulator's API from one client per message group (or WebSocket connection), one
    in `poison_every` poison; wait until each is processed or dead-lettered, and return the figures."""
    emulator = tally.emulator
    bodies = [poison("soak") if n % poison_every == 0 else good("soak") for n in range(messages)]
    poisoned = {b for b in bodies if '"fail": true' in b}
    by_group: dict[str, list[str]] = defaultdict(list)
    for n, body in enumerate(bodies):
        by_group[f"soak-{n % groups}"].append(body)

    def send_group(group: str) -> None:  # one client per group, in order: a FIFO group keeps its order
        for body in by_group[group]:
            answer = emulator.api.send(body, group=group)
            if answer.status not in (200, 202):
                raise RuntimeError(f"the API refused a message: {answer.status} {answer.body}")

    started = time.monotonic()
    # Lifted until the end: a WebSocket frame meets the throttle when the API handles it, after send() returned.
    with unthrottled(emulator.api):
        with ThreadPoolExecutor(max_workers=groups) as clients:
            list(clients.map(send_group, by_group))
        sent = time.monotonic() - started
        wait_for(lambda: tally.settled(bodies), timeout, "every message processed or dead-lettered")
    seconds = time.monotonic() - started
    dead = set(tally.dead) & set(bodies)
    return {
        "messages": messages,
        "poison": len(poisoned),
        "processed": sum(tally.processed(b) for b in bodies),
        "poison_processed": sum(tally.processed(b) for b in poisoned),
        "dead_lettered": len(dead),
        "good_dead_lettered": len(dead - poisoned),  # FIFO only: held back behind poison, sharing its receives
        "lost": len(tally.lost(bodies)),
        "duplicates": tally.duplicates(bodies),
        "wrong_redeliveries": tally.wrong_redeliveries(bodies),
        # FIFO: each group's processed messages in the order they were sent (a standard queue keeps no order)
        "groups_out_of_order": len(tally.out_of_order(by_group)) if emulator.poller.fifo else None,
        "send_seconds": round(sent, 2),
        "seconds": round(seconds, 2),
        "messages_per_second": round(messages / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--poison-every", type=int, default=20, help="one poison message in N (default 20: 5 %%)")
    parser.add_argument("--groups", type=int, default=10, help="message groups (FIFO) or WebSocket connections")
    parser.add_argument("--visibility-timeout", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    options = Options(sqs_port=0, api_port=0, visibility_timeout=args.visibility_timeout, keep_deliveries=True)
    with tempfile.TemporaryFile("w") as worker_output:
        with Emulator(options, worker_output=worker_output, log=lambda line: None) as emulator:
            figures = soak(Tally(emulator), args.messages, args.poison_every, args.groups, args.timeout)
            figures["invocations"] = emulator.poller.stats["invocations"]
    print(json.dumps(figures))
    return 0 if figures["lost"] == figures["duplicates"] == figures["wrong_redeliveries"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
