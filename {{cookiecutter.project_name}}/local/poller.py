"""The worker's event source mapping, locally: pollers that receive from the queue and invoke the real handler.

What Lambda does with an SQS event source, as documented, and what this does too:
- a batch is up to `BatchSize` records: one receive of up to 10 when there is no batching window; with a window,
  several receives until the batch is full or the window (counted from the first record) has passed;
- at most `MaximumConcurrency` invocations run at once, each in an execution environment of its own (a process:
  local.runtime) that stays warm between invocations;
- with ReportBatchItemFailures the records named in `batchItemFailures` stay on the queue and every other record is
  deleted; a response naming an id that is not in the batch, or a malformed one, fails the whole batch;
- an invocation that raises, or runs past the function's timeout (the environment is then killed), deletes nothing;
- SQS itself returns what was not deleted after the visibility timeout, and moves a message to the dead-letter
  queue once it has been received `maxReceiveCount` times.
Deployed, the visibility timeout is at least 6 x the function's timeout, so a message is never handed out again
while an invocation may still hold it. Locally it is a few seconds (LOCAL_VISIBILITY_TIMEOUT), so the pollers keep
what they receive hidden for as long as its invocation may run (the batching window, the function's timeout), and
give the records that failed back their local visibility timeout once the invocation is over: only a failed or
timed-out message comes back, and then soon.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .assembly import EventSource, Function
from .sqs import REGION

PROJECT = Path(__file__).resolve().parent.parent
WORKER = PROJECT / "worker"  # the function's code, /var/task in Lambda
LONG_POLL_SECONDS = 1  # short enough to stop promptly; SQS allows up to 20
FIFO_POLL_SECONDS = 0.05  # between empty receives on a FIFO queue (which does not long-poll here)
RECEIVE_MAX = 10  # SQS returns at most 10 messages per ReceiveMessage
HOLD_SLACK_SECONDS = 5  # beyond the window and the timeout: starting an environment, a loaded machine


@dataclass(frozen=True)
class Delivery:
    """One record handed to the worker, and what became of it."""

    message_id: str
    body: str
    receive_count: int
    deleted: bool  # False: it returns to the queue (failed, or the whole invocation failed)
    received: float  # time.monotonic() when the invocation started (just after the receive)
    at: float  # time.monotonic() when the invocation ended (before its records were deleted)


class InvocationFailed(Exception):
    """The invocation as a whole failed (Lambda's function error or timeout)."""


class ExecutionEnvironment:
    """One worker process (local.runtime), warmed up when the pollers start; after a timeout or a crash the next
    invocation starts a new one (a cold start)."""

    def __init__(
        self, function: Function, environment: dict[str, str], stdout: IO[str] | None, code: Path = WORKER
    ) -> None:
        self.function, self.code = function, code
        self.environment = environment
        self.stdout = stdout
        self.process: subprocess.Popen[str] | None = None
        self.results: IO[str] | None = None
        self._ready = False

    def _start(self) -> None:
        read, write = os.pipe()
        command = [sys.executable, "-m", "local.runtime", self.function.handler, str(write)]
        command += [self.function.name, str(self.function.memory_mb), str(self.function.timeout_seconds)]
        self.process = subprocess.Popen(
            command,
            cwd=self.code,
            env=self.environment | {"PYTHONPATH": str(PROJECT)},
            stdin=subprocess.PIPE,
            stdout=self.stdout,
            stderr=self.stdout,
            pass_fds=(write,),
            text=True,
        )
        os.close(write)
        self.results = os.fdopen(read, "r", encoding="utf-8")
        self._ready = False

    def wait_until_ready(self, timeout: float = 120) -> None:
        """Wait for the handler to be imported (the cold start), so that it does not eat the visibility timeout."""
        if self._ready:
            return
        assert self.results is not None
        ready, _, _ = select.select([self.results], [], [], timeout)
        line = self.results.readline() if ready else ""
        if not line:
            self.stop()
            raise InvocationFailed(f"the worker did not start ({self.function.handler}); its output says why")
        self._ready = True

    def warm_up(self) -> None:
        """Start the process now (it imports the handler while the first messages are on their way)."""
        if self.process is None or self.process.poll() is not None:
            self._start()

    def invoke(self, event: dict[str, Any]) -> Any:
        self.warm_up()
        self.wait_until_ready()
        assert self.process is not None and self.process.stdin is not None and self.results is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.results], [], [], self.function.timeout_seconds)
        if not ready:
            self.stop()  # Lambda ends a timed-out invocation with its environment
            raise InvocationFailed(f"Task timed out after {self.function.timeout_seconds} seconds")
        line = self.results.readline()
        if not line:
            self.stop()
            raise InvocationFailed("Runtime exited without a response")
        outcome = json.loads(line)
        if "errorType" in outcome:
            raise InvocationFailed(f"{outcome['errorType']}: {outcome['errorMessage']}")
        return outcome["response"]

    def stop(self) -> None:
        if self.process is not None:
            if self.process.stdin:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.results is not None:
            self.results.close()
        self.process = self.results = None


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to the function (the record of an SQS event)."""
    attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        attribute = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in value:
            attribute["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            attribute["binaryValue"] = value["BinaryValue"]
        attributes[name] = attribute
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def failed_ids(response: Any, batch_ids: set[str]) -> set[str] | None:
    """The ids a partial batch response names, or None when Lambda would count the whole batch as failed."""
    if response is None:
        return set()
    if not isinstance(response, dict) or not isinstance(response.get("batchItemFailures", []), list):
        return None
    failures = response.get("batchItemFailures", [])
    ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    if any(not isinstance(i, str) or i not in batch_ids for i in ids):
        return None
    return set(ids)


class Poller:
    """Receives from `queue_url` and invokes the function, `concurrency` batches at a time, until stopped."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        source: EventSource,
        function: Function,
        environment: dict[str, str],
        *,
        concurrency: int,
        visibility_timeout: int,
        keep_deliveries: bool = False,
        stdout: IO[str] | None = None,
        log: Callable[[str], None] = print,
        code: Path = WORKER,
    ) -> None:
        self.sqs, self.queue_url, self.queue_arn, self.source = sqs, queue_url, queue_arn, source
        self.visibility_timeout = visibility_timeout  # what a failed record gets back, locally
        # How long a received message stays hidden: as long as its invocation may still run.
        self.hold_seconds = source.batching_window_seconds + function.timeout_seconds + HOLD_SLACK_SECONDS
        self.environments = [ExecutionEnvironment(function, environment, stdout, code) for _ in range(concurrency)]
        self.log = log
        self.fifo = queue_url.endswith(".fifo")
        self.stats: Counter[str] = Counter()
        self.keep_deliveries = keep_deliveries
        self.deliveries: list[Delivery] = []  # every record handed to the worker, in order, when kept
        self._lock = threading.Lock()
        # moto decides which FIFO groups are in flight once per ReceiveMessage call, before it long-polls, and does
        # not lock between calls: a call could hand out a group's next message while another call holds the first.
        # SQS does not, so FIFO receives here take turns and do not long-poll (each call sees the groups as they are).
        self._receiving = threading.Lock() if self.fifo else contextlib.nullcontext()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(env,), name=f"poller-{n}", daemon=True)
            for n, env in enumerate(self.environments)
        ]

    def start(self) -> Poller:
        for environment in self.environments:  # started side by side, then waited for
            environment.warm_up()
        for environment in self.environments:
            environment.wait_until_ready()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        for environment in self.environments:
            environment.stop()

    def _count(self, **counts: int) -> None:
        with self._lock:
            self.stats.update(counts)

    def _record(self, batch: list[dict[str, Any]], deleted: set[str], started: float, ended: float) -> None:
        if not self.keep_deliveries:  # `make local` may run for days: keep only what the tests and the soak read
            return
        with self._lock:
            self.deliveries += [
                Delivery(
                    m["MessageId"],
                    m["Body"],
                    int(m["Attributes"]["ApproximateReceiveCount"]),
                    m["MessageId"] in deleted,
                    started,
                    ended,
                )
                for m in batch
            ]

    def _run(self, environment: ExecutionEnvironment) -> None:
        while not self._stopping.is_set():
            try:
                batch = self._gather()
                if batch:
                    self._invoke(environment, batch)
            except Exception as error:  # keep polling, as Lambda's pollers do; say what went wrong
                if not self._stopping.is_set():
                    self.log(f"poller: {type(error).__name__}: {error}")
                    time.sleep(1)

    def _gather(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        deadline = 0.0
        while len(batch) < self.source.batch_size and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if batch and remaining <= 0:
                break
            wait = LONG_POLL_SECONDS if not batch else max(0, min(LONG_POLL_SECONDS, int(remaining)))
            wait = 0 if self.fifo else wait
            with self._receiving:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(RECEIVE_MAX, self.source.batch_size - len(batch)),
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=self.hold_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            if self.fifo and not messages and not batch:
                time.sleep(FIFO_POLL_SECONDS)
            if messages and not batch:
                deadline = time.monotonic() + self.source.batching_window_seconds
            batch += messages
            if batch and self.source.batching_window_seconds == 0:
                break
        return batch

    def _invoke(self, environment: ExecutionEnvironment, batch: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        records = [lambda_record(message, self.queue_arn) for message in batch]
        self._count(invocations=1, records=len(records))
        try:
            response = environment.invoke({"Records": records})
        except InvocationFailed as error:
            ended = time.monotonic()
            self._count(failed_invocations=1, returned=len(records))
            self.log(f"invocation failed, all {len(records)} record(s) return to the queue: {error}")
            self._give_back(batch)
            return self._record(batch, set(), started, ended)
        ended = time.monotonic()  # before the deletes: the next batch of a FIFO group is received only after them
        failed: set[str] | None = set()
        if self.source.report_batch_item_failures:
            failed = failed_ids(response, {r["messageId"] for r in records})
        if failed is None:
            self._count(failed_invocations=1, returned=len(records))
            self.log(f"invalid batchItemFailures, all {len(records)} record(s) return to the queue: {response}")
            self._give_back(batch)
            return self._record(batch, set(), started, ended)
        done = [message for message in batch if message["MessageId"] not in failed]
        for start in range(0, len(done), RECEIVE_MAX):
            entries = [
                {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                for n, message in enumerate(done[start : start + RECEIVE_MAX])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self._give_back([message for message in batch if message["MessageId"] in failed])
        self._count(deleted=len(done), returned=len(failed))
        self._record(batch, {message["MessageId"] for message in done}, started, ended)

    def _give_back(self, messages: list[dict[str, Any]]) -> None:
        """The failed records' local visibility timeout, counted from now (they were held for the invocation)."""
        for start in range(0, len(messages), RECEIVE_MAX):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.visibility_timeout}
                for n, m in enumerate(messages[start : start + RECEIVE_MAX])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
