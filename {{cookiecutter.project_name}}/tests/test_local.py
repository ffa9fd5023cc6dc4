"""Message safety under `make local`: the emulator (local/) on free ports, this project's API as synthesized, the real
worker. Nothing is lost, nothing is processed twice by the pipeline's own doing, failures go where they should.

One scenario sends every kind of message at once through the API (a valid one, a poison one, two message groups,
a soak with 5 % poison) plus one batch straight to the queue; each test then checks one promise against what the
pollers handed to the worker. Expected values come from the answers (conftest.Expected), not from the emulator.
The emulator (conftest's `pipeline`) runs with the timings that make a poison message's trips take seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from alarms import Samples, emf_lines, key
from conftest import MANY_RETRIES, PROJECT, TIMEOUT_FLOOR
from local import sigv4
from local.assembly import EventSource, Function
from local.poller import Delivery, ExecutionEnvironment, InvocationFailed, Poller
from local.serving import TokenBucket
from local.soak import Tally, good, poison, rejected, soak, unthrottled, wait_for
from local.sqs import ACCOUNT, REGION, post

SOAK_MESSAGES = 200
SOAK_POISON_EVERY = 20  # 5 %
# With many receives before the dead-letter queue, 2.5 %: then every poison message of the scenario fits in one
# receive of 10, and each of the dlq_retries rounds is one invocation (the suite stays fast).
SOAK_POISON_EVERY_WITH_MANY_RETRIES = 40
SOAK_GROUPS = 7


@dataclass
class Scenario(Tally):
    """The messages of the scenario, and what became of each (Tally)."""

    fifo: bool = False
    valid: str = field(default_factory=lambda: good("valid"))
    poison: str = field(default_factory=lambda: poison("poison"))
    rejected: str = field(default_factory=lambda: rejected("rejected"))
    # Against schemas/message.json: the HTTP and WebSocket workers reject it (REST refuses it at its gateway).
    invalid: str = field(default_factory=lambda: json.dumps({"idempotency_key": 5, "id": str(uuid.uuid4())}))
    checks_schema_in_worker: bool = True
    group_a: list[str] = field(default_factory=lambda: [good("group-a"), poison("group-a"), good("group-a")])
    group_b: list[str] = field(default_factory=lambda: [good("group-b") for _ in range(3)])
    batch: list[str] = field(default_factory=lambda: [good("batch") for _ in range(4)] + [poison("batch")])
    soak_figures: dict = field(default_factory=dict)  # local.soak's figures for the soak part
    seconds: float = 0.0

    def send(self, body: str, group: str) -> None:
        answer = self.emulator.api.send(body, group=group)
        assert answer.status in (200, 202), answer.body

    def all_bodies(self) -> list[str]:
        invalid = [self.invalid] if self.checks_schema_in_worker else []
        return [self.valid, self.poison, self.rejected, *invalid, *self.group_a, *self.group_b, *self.batch]

    def all_settled(self) -> bool:
        return self.settled(self.all_bodies())


@pytest.fixture(scope="module")
def scenario(pipeline, expected) -> Scenario:
    run = Scenario(pipeline, fifo=expected.fifo, checks_schema_in_worker=expected.api_flavour != "rest")
    started = time.monotonic()
    with unthrottled(pipeline.api):
        run.send(run.valid, "valid")
        run.send(run.poison, "poison")
        run.send(run.rejected, "rejected")
        if run.checks_schema_in_worker:
            run.send(run.invalid, "invalid")
        for body in run.group_a:
            run.send(body, "group-a")
        for body in run.group_b:
            run.send(body, "group-b")
    # One batch straight to the queue, so that its records can share an invocation (each in a group of its own).
    entries = [
        {"Id": str(n), "MessageBody": body}
        | ({"MessageGroupId": f"batch-{n}", "MessageDeduplicationId": str(uuid.uuid4())} if run.fifo else {})
        for n, body in enumerate(run.batch)
    ]
    pipeline.sqs.client.send_message_batch(QueueUrl=pipeline.queue_urls[expected.queue_name], Entries=entries)
    many = expected.max_receive_count > MANY_RETRIES
    every = SOAK_POISON_EVERY_WITH_MANY_RETRIES if many else SOAK_POISON_EVERY
    run.soak_figures = soak(
        run, SOAK_MESSAGES, poison_every=every, groups=SOAK_GROUPS, timeout=300
    )  # while the rest runs
    wait_for(run.all_settled, 300, "every message processed or in the dead-letter queue")
    run.seconds = time.monotonic() - started
    time.sleep(pipeline.options.visibility_timeout + 0.5)  # time enough for a wrong redelivery to show
    return run


def test_the_emulator_runs_the_stack_as_the_answers_made_it(pipeline, expected):
    queue = next(q for q in pipeline.assembly.queues() if q.dead_letter_queue)
    assert (queue.name, queue.dead_letter_queue) == (expected.queue_name, expected.dlq_name)
    assert queue.max_receive_count == expected.max_receive_count
    assert pipeline.source.batch_size == expected.batch_size
    assert (pipeline.api.throttle.rate, pipeline.api.throttle.burst) == (expected.rate_limit, expected.burst_limit)
    # The function's own timeout, raised to the scenario's floor only (`make local` keeps it: test_make_local.py).
    assert pipeline.function.timeout_seconds == max(expected.worker_timeout, TIMEOUT_FLOOR)


def test_a_valid_message_is_processed_once_and_logged_with_its_message_id(scenario):
    [delivery] = scenario.deliveries(scenario.valid)  # nothing times out here: a second delivery is a defect
    assert delivery.deleted
    lines = [json.loads(line) for line in scenario.emulator.worker_log.read_text().splitlines() if line.startswith("{")]
    assert any(
        line.get("message") == "Message processed" and line.get("message_id") == delivery.message_id for line in lines
    )


def test_a_poison_message_is_received_dlq_retries_times_then_waits_in_the_dlq_intact(scenario, expected):
    trips = scenario.deliveries(scenario.poison)
    assert sorted(d.receive_count for d in trips) == list(range(1, expected.max_receive_count + 1))
    assert not any(d.deleted for d in trips)
    assert scenario.dead[scenario.poison]["Body"].encode() == scenario.poison.encode()


def test_the_worker_counts_each_outcome_under_its_stages_namespace_and_service(scenario, expected):
    """What the alarms on the worker's own metrics read (tests/test_monitoring.py): the EMF lines the worker wrote
    in the scenario, as CloudWatch Logs extracts them, under this stage's namespace and `service` dimension."""
    samples = Samples()
    for line in emf_lines(scenario.emulator.worker_log.read_text()):
        samples.from_emf(line, at=0)

    def total(name: str) -> float:
        return sum(
            value for _, value in samples.values.get(key(expected.prefix, name, {"service": expected.prefix}), [])
        )

    rejected = 1 + scenario.checks_schema_in_worker
    done = sum(d.deleted for d in scenario.emulator.poller.deliveries)
    assert (total("MessagesRejected"), total("MessagesProcessed") + total("MessagesRejected")) == (rejected, done)
    assert total("MessagesFailed") >= len(scenario.deliveries(scenario.poison))


def test_a_message_that_can_never_succeed_reaches_the_dlq_on_its_first_receive_with_the_reason(scenario):
    reasons = {scenario.rejected: "RejectedMessage: the message asked to be rejected"}
    if scenario.checks_schema_in_worker:
        reasons[scenario.invalid] = "RejectedMessage: schema message.json: data.idempotency_key must be string"
    for body, reason in reasons.items():
        [delivery] = scenario.deliveries(body)
        assert delivery.receive_count == 1 and delivery.deleted  # reported done once it was in the dead-letter queue
        dead = scenario.dead[body]
        assert dead["Body"].encode() == body.encode()
        assert dead["MessageAttributes"]["DeadLetterReason"] == {"StringValue": reason, "DataType": "String"}


def test_in_a_batch_with_one_failure_the_others_are_not_processed_again(scenario, expected):
    good_ones, bad = scenario.batch[:-1], scenario.batch[-1]
    # None of them went back to the queue because of the poison one beside it: each was delivered once, and done.
    assert [[d.deleted for d in scenario.deliveries(body)] for body in good_ones] == [[True]] * len(good_ones)
    assert len(scenario.deliveries(bad)) == expected.max_receive_count


def test_a_failing_message_holds_back_its_group_on_fifo_and_nothing_on_a_standard_queue(scenario):
    a1, a2, a3 = scenario.group_a
    b1, b2, b3 = (scenario.finished_at(b) for b in scenario.group_b)
    last_try_of_a2 = scenario.deliveries(a2)[-1].at
    if scenario.fifo:
        # a3 waits until a2 has left for the dead-letter queue; its trips behind a2 count as receives too, so it
        # may follow a2 there (SQS FIFO with Lambda does the same; see the README).
        assert scenario.finished_at(a1) < last_try_of_a2
        assert (scenario.processed(a3) and scenario.finished_at(a3) >= last_try_of_a2) or a3 in scenario.dead
        assert b1 <= b2 <= b3  # group b went on meanwhile, in order
    else:
        assert scenario.finished_at(a3) < last_try_of_a2  # nothing waits for a failing message


def test_a_soak_with_poison_loses_nothing_and_processes_nothing_twice(scenario):
    figures = scenario.soak_figures
    print(f"soak: {figures}")
    wrong = (figures["lost"], figures["duplicates"], figures["wrong_redeliveries"], figures["poison_processed"])
    assert wrong == (0, 0, 0, 0)
    assert figures["groups_out_of_order"] == (0 if scenario.fifo else None)  # each of the groups, in send order
    assert figures["dead_lettered"] - figures["good_dead_lettered"] == figures["poison"]  # every poison message
    # Only a FIFO group's members can share a poison message's receives and follow it to the dead-letter queue.
    assert figures["good_dead_lettered"] == 0 or scenario.fifo


class Recorded:
    """What Tally reads of an emulator: the pollers' deliveries."""

    def __init__(self, *deliveries: Delivery) -> None:
        self.poller = type("Poller", (), {"deliveries": list(deliveries), "fifo": True})()


def test_the_tally_tells_a_retry_from_a_duplicate_a_redelivery_in_flight_and_a_loss():
    def trip(body: str, count: int, deleted: bool, received: float, at: float) -> Delivery:
        return Delivery(f"id-{body}", body, count, deleted, received, at)

    tally = Tally(
        Recorded(
            trip("once", 1, True, 0, 1),
            trip("retried", 1, False, 0, 1),  # failed, then back after its visibility timeout: allowed
            trip("retried", 2, True, 3, 4),
            trip("twice", 1, True, 0, 1),  # processed, deleted, and handed out again
            trip("twice", 2, True, 2, 3),
            trip("in-flight", 1, False, 0, 5),  # handed out again while its first invocation still ran
            trip("in-flight", 2, False, 2, 3),
        )
    )
    bodies = ["once", "retried", "twice", "in-flight", "never"]
    assert (tally.duplicates(bodies), tally.wrong_redeliveries(bodies)) == (1, 2)
    assert (tally.wrong_redeliveries(["once", "retried"]), tally.lost(bodies)) == (0, ["in-flight", "never"])


def test_the_tally_finds_a_group_processed_out_of_the_order_it_was_sent():
    a1, a2, a3, b1, b2 = (
        Delivery(n, n, 1, True, 0, at) for n, at in [("a1", 1), ("a2", 2), ("a3", 2)] + [("b1", 3), ("b2", 1)]
    )
    tally = Tally(Recorded(a1, a2, a3, b1, b2))  # a2 and a3 in one batch, in that order; b2 done before b1
    assert tally.processing_order(["a1", "a2", "a3"]) == ["a1", "a2", "a3"]
    assert tally.out_of_order({"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1"]}) == ["b"]


def test_the_throttle_takes_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=20, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.06  # 1.2 tokens' worth at 20/s
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 10  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_with_its_throttle_empty_the_api_refuses_then_recovers(pipeline, scenario):
    """429 from HTTP and REST APIs, an error frame on a WebSocket; the bucket's size and rate are the answers' (see
    the first test), here it is held empty so that a fast rate cannot refill it before the request arrives."""
    first = good("before-throttle")
    scenario.send(first, "throttle")  # a WebSocket client connects first: $connect counts against the throttle too
    wait_for(lambda: scenario.processed(first), 60, "the first message")
    throttle = pipeline.api.throttle
    rate = throttle.rate
    throttle.rate = 0.0
    try:
        while throttle.take():
            pass
        seen = len(pipeline.api.frames())
        refused = good("throttled")
        answer = pipeline.api.send(refused, group="throttle")
        if answer.status != 429:  # WebSocket answers no status per frame: the refusal is an error frame
            wait_for(lambda: any("Too Many Requests" in f for f in pipeline.api.frames()[seen:]), 10, "an error frame")
    finally:
        throttle.rate = rate
    time.sleep(1 / rate + 0.05)  # one request's worth of tokens comes back
    after = good("after-throttle")
    scenario.send(after, "throttle")
    wait_for(lambda: scenario.processed(after), 60, "a message after the throttle refilled")
    assert scenario.deliveries(refused) == []


def test_the_results_topic_and_idempotency_work_locally_as_deployed(scenario, pipeline, expected):
    """The topic and the table live in the same moto server, and the worker reaches them through its routes (walls on):
    with result_topic = sns the valid message's result reaches the topic's local subscriber with its message id;
    with idempotency = dynamodb a client's retry (the same idempotency key and body) is delivered again but not
    processed again."""
    sqs = pipeline.sqs.client
    subscriber = pipeline.queue_urls.get(f"{expected.results_topic_name}-local")
    if expected.result_topic == "sns":
        [valid] = scenario.deliveries(scenario.valid)
        notices = []
        while batch := sqs.receive_message(QueueUrl=subscriber, MaxNumberOfMessages=10).get("Messages"):
            notices += [json.loads(m["Body"]) for m in batch]
        ids = [n["MessageAttributes"]["messageId"]["Value"] for n in notices]
        assert ids.count(valid.message_id) == 1
    else:
        assert subscriber is None
    body = json.dumps({"idempotency_key": str(uuid.uuid4()), "test": "sent-twice"})
    with unthrottled(pipeline.api):
        for sent in (1, 2):
            scenario.send(body, "twice")
            done = sent
            wait_for(lambda done=done: sum(d.deleted for d in scenario.deliveries(body)) >= done, 60, "delivery done")
    log = pipeline.worker_log.read_text()
    reused = log.count("Duplicate message: the stored result is reused")
    assert reused == (1 if expected.idempotency == "dynamodb" else 0)


CHATTY_WORKER = """
import json


def handler(event, context):
    for line in range(event["lines"]):
        padding = "x" * (20_000 if line % 100 == 0 else 300)  # some lines longer than a text stream's 8 KiB chunk
        print(json.dumps({"environment": event["environment"], "line": line, "padding": padding}))
    return event["lines"]
"""


def test_concurrent_environments_write_whole_lines_to_the_shared_log(tmp_path):
    """Lambda gives each execution environment a log stream of its own; locally they all write to one file, where a
    line of one must never split another's (print writes the text and its newline apart: Powertools' metrics do)."""
    (tmp_path / "chatty.py").write_text(CHATTY_WORKER)
    function = Function("chatty", "chatty.handler", timeout_seconds=60, memory_mb=128, environment={})
    lines = 2000
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        environments = [ExecutionEnvironment(function, dict(os.environ), output, code=tmp_path) for _ in range(3)]
        try:
            with ThreadPoolExecutor(len(environments)) as pool:
                answers = pool.map(
                    lambda pair: pair[1].invoke({"environment": pair[0], "lines": lines}), enumerate(environments)
                )
                assert list(answers) == [lines] * len(environments)
        finally:
            for environment in environments:
                environment.stop()
    written = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((entry["environment"], entry["line"]) for entry in written) == [
        (environment, line) for environment in range(len(environments)) for line in range(lines)
    ]


# --- the walls: IAM, network and time as the stack builds them (local/walls.py, local/network.py) --------------------

CALLING_LOGIC = """
import clients
from botocore.exceptions import ClientError, ConnectTimeoutError


def handler(event, context):
    try:
        getattr(clients.client(event["service"]), event["operation"])(**event["parameters"])
    except ClientError as error:
        return {"code": error.response["Error"]["Code"], "message": error.response["Error"]["Message"]}
    except ConnectTimeoutError:
        return {"code": "ConnectTimeoutError"}
    return {"code": "ok"}
"""
UNGRANTED = {"service": "s3", "operation": "get_object", "parameters": {"Bucket": "reports", "Key": "latest.csv"}}


@pytest.fixture
def own_logic(pipeline, tmp_path):
    """An execution environment of the worker, as `make local` runs it (its environment: the role's credentials, its
    routes, its timeouts), whose logic makes the AWS call it is given, through worker/clients.py."""
    (tmp_path / "calls.py").write_text(CALLING_LOGIC)
    (tmp_path / "clients.py").write_text((PROJECT / "worker" / "clients.py").read_text())
    # At least TIMEOUT_FLOOR s (the pipeline's): the call's own timeouts must decide, not a very short worker timeout.
    function = dataclasses.replace(pipeline.function, handler="calls.handler")
    environment = ExecutionEnvironment(function, pipeline.poller.environments[0].environment, None, code=tmp_path)
    yield environment
    environment.stop()


def test_nothing_the_stack_grants_is_refused(scenario, pipeline):
    """Every call of the scenario (the API's sends, the mapping's receives and deletes, the worker's rejects, results
    and idempotency records) was decided by the synthesized policies, and allowed."""
    assert [line for line in pipeline.sqs.refusals if UNGRANTED["parameters"]["Bucket"] not in line] == []


def test_a_call_of_the_logic_without_a_grant_fails_as_in_aws_and_says_where_the_grant_belongs(pipeline, own_logic):
    answer = own_logic.invoke(UNGRANTED)
    if not pipeline.network.reaches("s3"):  # a worker in a VPC with no route to S3 never gets as far as IAM
        assert answer == {"code": "ConnectTimeoutError"}
        return
    role, resource = pipeline.function.role, "arn:aws:s3:::reports/latest.csv"
    assert answer == {
        "code": "AccessDenied",
        "message": f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{role} is not authorized to perform: "
        f"s3:GetObject on resource: {resource} because no identity-based policy allows the s3:GetObject action",
    }
    # The server prints the line before it answers; the emulator reads it from the server's stderr as it comes.
    wait_for(lambda: any(resource in line for line in pipeline.sqs.refusals), 10, "the refusal's line")
    [line] = [line for line in pipeline.sqs.refusals if resource in line]
    assert line.startswith(f"IAM refused s3:GetObject on {resource} to role {role} ")
    assert "settings.py `worker_permissions`" in line


def test_a_service_with_no_route_from_the_workers_subnets_times_out_its_connection(pipeline, own_logic):
    """Without a NAT gateway, a service with no VPC endpoint is unreachable: the SDK's connect timeout expires (a
    service the worker is not granted either, so that only the route decides)."""
    answer = own_logic.invoke({"service": "secretsmanager", "operation": "list_secrets", "parameters": {}})
    if pipeline.network.reaches("secretsmanager"):
        assert answer["code"] == "AccessDeniedException"  # reached, and refused by IAM
    else:
        assert answer == {"code": "ConnectTimeoutError"}


SLOW_LOGIC = """
import time


def handler(event, context):
    time.sleep(event["seconds"])
    return "done"
"""


def test_an_invocation_longer_than_the_timeout_is_stopped_and_the_next_starts_cold(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_LOGIC)
    function = Function("slow", "slow.handler", timeout_seconds=1, memory_mb=128, environment={})
    environment = ExecutionEnvironment(function, dict(os.environ), None, code=tmp_path)
    try:
        with pytest.raises(InvocationFailed, match="Task timed out after 1 seconds"):
            environment.invoke({"seconds": 30})
        assert environment.process is None  # Lambda ends a timed-out invocation with its environment
        assert environment.invoke({"seconds": 0}) == "done"
    finally:
        environment.stop()


# api_auth = iam: API Gateway checks the caller's SigV4 signature before anything else (local/sigv4.py).
REST_REFUSALS = {
    "unsigned": {"message": "Missing Authentication Token"},
    "wrong secret": {"message": sigv4.REST_MESSAGES["bad signature"]},
    "unknown key": {"message": "The security token included in the request is invalid."},
}


def signed_as(url: str, method: str, body: bytes, headers: dict[str, str], key: str, secret: str) -> dict[str, str]:
    request = AWSRequest(method, url, data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


CALLERS = {
    "unsigned": None,
    "wrong secret": (sigv4.CALLER["aws_access_key_id"], "not-the-secret"),
    "unknown key": ("AKIAUNKNOWNCALLER0001", sigv4.CALLER["aws_secret_access_key"]),
    "the local caller": tuple(sigv4.CALLER.values()),
}


@pytest.mark.parametrize("caller", CALLERS)
def test_the_api_lets_through_only_what_api_gateway_lets_through(pipeline, expected, caller):
    """With api_auth = iam only the local caller's valid signature passes, refused in the API's own words (REST
    names the problem, HTTP says Forbidden, a WebSocket handshake gets 403); with none, everyone passes."""
    passes = expected.api_auth == "none" or caller == "the local caller"
    credentials = CALLERS[caller]
    body = good("signed").encode("utf-8")
    if expected.api_flavour == "websocket":
        url = pipeline.api.url
        headers = signed_as(url.replace("ws://", "http://"), "GET", b"", {}, *credentials) if credentials else {}
        if passes:
            with connect(url, additional_headers=headers):
                pass
        else:
            with pytest.raises(InvalidStatus, match="HTTP 403"):
                connect(url, additional_headers=headers)
        return
    headers = {"Content-Type": "application/json", "X-Message-Group-Id": "signed"}
    if credentials:
        headers = signed_as(pipeline.api.url, "POST", body, headers, *credentials)
    with unthrottled(pipeline.api):
        answer = post(pipeline.api.url, body, headers)
    if passes:
        assert answer.status in (200, 202), answer.body
    else:
        assert answer.status == 403
        refusal = REST_REFUSALS[caller] if expected.api_flavour == "rest" else {"message": "Forbidden"}
        assert json.loads(answer.body) == refusal


SLOW_BATCH = """
import json
import time


def handler(event, context):
    for record in event["Records"]:
        time.sleep(json.loads(record["body"])["seconds"])
    return {"batchItemFailures": []}
"""


def test_a_message_is_not_handed_out_again_while_its_invocation_runs(pipeline, tmp_path):
    """Deployed, the visibility timeout is at least 6 x the function's timeout; locally it is a second or two, so
    the pollers hold a message for as long as its invocation may run: an invocation longer than the local
    visibility timeout sees no second delivery of its message."""
    (tmp_path / "slow.py").write_text(SLOW_BATCH)
    sqs = pipeline.sqs.client
    name = f"hold-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    function = Function("slow", "slow.handler", timeout_seconds=30, memory_mb=128, environment={})
    source = EventSource(
        name, batch_size=1, batching_window_seconds=0, max_concurrency=2, report_batch_item_failures=True
    )
    poller = Poller(
        sqs,
        url,
        pipeline.sqs.arn(name),
        source,
        function,
        dict(os.environ),
        concurrency=2,
        visibility_timeout=1,
        keep_deliveries=True,
        code=tmp_path,
    ).start()
    try:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"seconds": 3}))  # three visibility timeouts long
        wait_for(lambda: any(d.deleted for d in poller.deliveries), 60, "the slow message processed")
    finally:
        poller.stop()
    assert [d.receive_count for d in poller.deliveries] == [1]
