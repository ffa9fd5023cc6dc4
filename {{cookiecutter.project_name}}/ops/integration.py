"""Check the deployed stack end to end: one message through the API to the worker, and an empty dead-letter queue.

    make integration                          # after `make deploy` (the stage of the answers, or STAGE=...)
    make integration ARGS="--timeout 180"     # wait longer for the worker (seconds; default 90)
    make integration ARGS=--strict            # in CI right after a deploy: a skip is a failure

The steps, each printed with its outcome:
1. stack: DescribeStacks on the stack, for its `MessagesUrl` output;
2. send: one message tagged with a fresh id (`{"integration_check": "<id>"}`, or --body) through the API, signed
   with SigV4 (service execute-api) when api_auth is iam: http/rest `POST MessagesUrl` (with `X-Message-Group-Id`
   on a FIFO queue), websocket one frame on a connection (the $connect handshake signed), then the worker's reply;
3. worker log: the worker's `Message processed` line for that message in its log group (FilterLogEvents): by the
   SQS message id the API answered (http, rest), or by the result the worker replied (websocket);
4. dead letters: the dead-letter queue holds no message (ApproximateNumberOfMessages).

Exit status: 0 PASS; 1 FAIL; 0 SKIP, with a one-line reason, when there is nothing to check: botocore finds no AWS
credentials, or the stack is not deployed (--strict makes a skip exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.__package_name }}.settings import ANSWERS, Settings

DEFAULT_TIMEOUT_SECONDS = 90.0  # a cold worker start plus CloudWatch Logs' ingestion delay, with room to spare
POLL_SECONDS = 3.0  # between two FilterLogEvents searches
CLOCK_SKEW_SECONDS = 60  # the log search starts this long before the message was sent (clocks differ)
REQUEST_TIMEOUT_SECONDS = 30.0  # one HTTP request or WebSocket handshake
# The check's clock and its wait between two log searches (the tests give it a clock of their own).
clock, pause = time.monotonic, time.sleep
URL_OUTPUT = "MessagesUrl"  # every flavour's stack output (websocket: the same URL as WebSocketUrl)
TAG_FIELD = "integration_check"
GROUP_ID = "integration-check"  # FIFO: the message group of the check's messages
GROUP_ID_HEADER = "X-Message-Group-Id"
PROCESSED = "Message processed"  # the worker's log message for a record it processed (worker/handler.py)
FAILED = "Message failed"  # ... and for one it failed ("Message failed; it returns to the queue")
REJECTED = "Message rejected"  # ... and for one it sent to the dead-letter queue at once (schema, RejectedMessage)
# Stack states in which the deployed resources are in place (an update rolled back keeps the previous version).
READY_STATUSES = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
NOT_DEPLOYED_STATUSES = {"REVIEW_IN_PROGRESS"}  # a change set was created but never executed
API_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class Skip(Exception):
    """Nothing to check (no credentials, no deployed stack): the reason, in one line."""


class StepFailed(Exception):
    """A step that did not pass: what went wrong, and where to look."""


@dataclass
class Sent:
    """What the API answered for the check's message: the SQS message id (http, rest) or the worker's reply
    (websocket)."""

    sent_at: float
    message_id: str | None = None
    reply: Any = None


@dataclass
class Report:
    """Prints each step's outcome and remembers the failures."""

    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    failures: list[str] = field(default_factory=list)

    def ok(self, step: str, text: str) -> None:
        self.out(f"  {step:<13}{text}")

    def failed(self, step: str, text: str) -> None:
        self.failures.append(step)
        self.out(f"  {step:<13}FAILED: {text}")


# --- AWS access --------------------------------------------------------------------------------------------------


def credentials_of(session: Any) -> Any:
    """The caller's frozen credentials; Skip when botocore's default chain finds none."""
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError as error:  # a profile that does not exist, an expired SSO session
        raise StepFailed(f"could not load the AWS credentials: {error}") from error
    if frozen is None or not frozen.access_key:
        raise Skip("no AWS credentials (botocore's default chain found none); nothing to check")
    return frozen


def stack_outputs(cloudformation: Any, stack_name: str) -> tuple[str, dict[str, str]]:
    """The stack's status and outputs; Skip when it is not deployed, StepFailed when it is not usable."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if error.response["Error"]["Code"] == "ValidationError" and "does not exist" in message:
            raise Skip(f"{stack_name} is not deployed (`make deploy` first); nothing to check") from error
        raise StepFailed(f"could not read {stack_name}: {error}") from error
    except BotoCoreError as error:  # no network, an endpoint that cannot be reached
        raise StepFailed(f"could not read {stack_name}: {error}") from error
    status = stack["StackStatus"]
    if status in NOT_DEPLOYED_STATUSES:
        raise Skip(f"{stack_name} is not deployed ({status}); nothing to check")
    if status not in READY_STATUSES:
        raise StepFailed(f"{stack_name} is {status}, not deployed and settled; look at its events, deploy again")
    return status, {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def api_region(url: str, default: str) -> str:
    """The region in an execute-api URL (what SigV4 signs for), else the stack's."""
    match = API_REGION.search(url)
    return match.group(1) if match else default


def signed_headers(
    method: str, url: str, *, body: bytes, headers: dict[str, str], credentials: Any, region: str
) -> dict[str, str]:
    """`headers` plus the SigV4 ones (Authorization, X-Amz-Date, X-Amz-Security-Token) for execute-api."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return dict(request.headers.items())


# --- the steps ---------------------------------------------------------------------------------------------------


def send_http(
    url: str, body: str, *, settings: Settings, credentials: Any, region: str, timeout: float
) -> tuple[int, str]:
    """POST the message; the SQS message id from the API's answer (HTTP API: SQS's SendMessage answer, REST API:
    `{"messageId": ...}`)."""
    data = body.encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if settings.fifo:
        headers[GROUP_ID_HEADER] = GROUP_ID
    if settings.api_auth == "iam":
        headers = signed_headers("POST", url, body=data, headers=headers, credentials=credentials, region=region)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        answer = error.read().decode("utf-8", errors="replace")
        raise StepFailed(f"POST {url} answered {error.code}: {answer[:300]}") from error
    except (urllib.error.URLError, OSError) as error:
        raise StepFailed(f"could not reach {url}: {getattr(error, 'reason', error)}") from error
    message_id = _message_id(answer)
    if message_id is None:
        raise StepFailed(f"POST {url} answered {status} without a message id: {answer[:300]}")
    return status, message_id


def _message_id(answer: str) -> str | None:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if "messageId" in parsed:  # REST API (mapping/rest_response.vtl)
        return parsed["messageId"]
    result = parsed.get("SendMessageResponse", {}).get("SendMessageResult", {})  # HTTP API: SQS's own answer
    return result.get("MessageId") if isinstance(result, dict) else None


def send_websocket(url: str, body: str, *, settings: Settings, credentials: Any, region: str, deadline: float) -> Any:
    """Connect (the handshake GET signed when api_auth is iam), send the message as one frame, and return the
    worker's reply (parsed JSON, or the text)."""
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    headers: dict[str, str] = {}
    if settings.api_auth == "iam":
        https = re.sub(r"^ws", "http", url)  # wss:// -> https://, ws:// -> http://: what the handshake GET is
        # Host is left to the client, which sends the URL's; SigV4 signs that same value.
        headers = signed_headers("GET", https, body=b"", headers={}, credentials=credentials, region=region)
    try:
        handshake_timeout = min(REQUEST_TIMEOUT_SECONDS, max(deadline - clock(), 0.1))
        with connect(url, additional_headers=headers, open_timeout=handshake_timeout) as connection:
            connection.send(body)
            reply = connection.recv(timeout=max(deadline - clock(), 0.1))
    except InvalidStatus as error:
        raise StepFailed(f"the WebSocket handshake with {url} was refused: {error.response.status_code}") from error
    except TimeoutError as error:
        raise StepFailed("no reply from the worker in time (look at the worker log, or raise --timeout)") from error
    except (WebSocketException, OSError) as error:
        raise StepFailed(f"WebSocket {url}: {type(error).__name__}: {error}") from error
    try:
        parsed = json.loads(reply)
    except (TypeError, ValueError):
        return reply
    if isinstance(parsed, dict) and {"message", "requestId"} <= parsed.keys() and "connectionId" in parsed:
        raise StepFailed(f"the API refused the frame: {parsed['message']} (requestId {parsed['requestId']})")
    return parsed


LogMatch = Callable[[dict[str, Any]], bool]


def find_log_line(
    logs: Any,
    log_group: str,
    *,
    pattern: str,
    start_ms: int,
    ours: LogMatch,
    deadline: float,
    poll_seconds: float,
) -> dict[str, Any]:
    """The worker's first JSON log line that `ours` accepts, searched every poll_seconds until the deadline
    (clock()). A `Message failed` or `Message rejected` line of ours fails the step at once: the message
    will not pass."""
    while True:
        for line in _log_lines(logs, log_group, pattern, start_ms):
            if not ours(line):
                continue
            if str(line.get("message", "")).startswith(REJECTED):
                raise StepFailed(
                    f"the worker rejected the message ({line.get('reason', 'no reason given')}); it is in the "
                    "dead-letter queue"
                )
            if str(line.get("message", "")).startswith(FAILED):
                raise StepFailed(
                    f"the worker failed the message ({line.get('error', 'no error given')}); it returns to the queue "
                    "and ends in the dead-letter queue"
                )
            if line.get("message") == PROCESSED:
                return line
        if clock() + poll_seconds > deadline:
            raise StepFailed(f"no `{PROCESSED}` line for the message in {log_group} in time (raise --timeout?)")
        pause(poll_seconds)


def _log_lines(logs: Any, log_group: str, pattern: str, start_ms: int) -> list[dict[str, Any]]:
    """Every JSON log line of the group from start_ms on that contains the pattern's term."""
    lines: list[dict[str, Any]] = []
    arguments = {"logGroupName": log_group, "startTime": start_ms, "filterPattern": pattern, "interleaved": True}
    try:
        while True:
            page = logs.filter_log_events(**arguments)
            for event in page.get("events", []):
                try:
                    line = json.loads(event["message"])
                except ValueError:
                    continue  # Lambda's own START/END/REPORT lines
                if isinstance(line, dict):
                    lines.append(line)
            if not page.get("nextToken"):
                return lines
            arguments["nextToken"] = page["nextToken"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return lines  # the group appears with the worker's first line
        raise


def dlq_depth(sqs: Any, dlq_name: str) -> int:
    url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# --- the run -----------------------------------------------------------------------------------------------------


def check(
    settings: Settings,
    session: Any,
    region: str,
    *,
    timeout: float,
    poll_seconds: float,
    body: str | None,
    report: Report,
) -> None:
    """Run the four steps against the deployed stack; Skip when there is nothing to check."""
    credentials = credentials_of(session)
    client = _clients(session, region)
    status, outputs = stack_outputs(client("cloudformation"), settings.stack_name)
    tag = uuid.uuid4().hex
    body = body if body is not None else json.dumps({TAG_FIELD: tag})
    report.out(
        f"integration: {settings.stack_name} in {region} ({settings.api_flavour} API, api_auth {settings.api_auth}, "
        f"{settings.queue_type} queue), check {tag}"
    )
    url = outputs.get(URL_OUTPUT)
    if not url:
        report.failed("stack", f"{status}, but no {URL_OUTPUT} output (deployed from another version?)")
    else:
        report.ok("stack", f"{status}; {URL_OUTPUT} {url}")
        _message_round_trip(settings, client, region, url, body, credentials, timeout, poll_seconds, report)

    try:
        depth = dlq_depth(client("sqs"), settings.dlq_name)
    except (ClientError, BotoCoreError) as error:
        report.failed("dead letters", f"could not read {settings.dlq_name}: {error}")
    else:
        if depth:
            report.failed(
                "dead letters",
                f"{depth} message(s) wait in {settings.dlq_name}: look at them, fix the cause, then `make redrive`",
            )
        else:
            report.ok("dead letters", f"{settings.dlq_name} is empty")


def _message_round_trip(
    settings: Settings,
    client: Callable[[str], Any],
    region: str,
    url: str,
    body: str,
    credentials: Any,
    timeout: float,
    poll_seconds: float,
    report: Report,
) -> None:
    started = clock()
    deadline = started + timeout
    signing_region = api_region(url, region)
    sent_at = time.time()
    try:
        if settings.api_flavour == "websocket":
            reply = send_websocket(
                url, body, settings=settings, credentials=credentials, region=signing_region, deadline=deadline
            )
            sent = Sent(sent_at, reply=reply)
            report.ok("send", f"1 frame on {url}; the worker replied {json.dumps(reply)[:200]}")
        else:
            http_status, message_id = send_http(
                url,
                body,
                settings=settings,
                credentials=credentials,
                region=signing_region,
                timeout=min(REQUEST_TIMEOUT_SECONDS, timeout),
            )
            sent = Sent(sent_at, message_id=message_id)
            report.ok("send", f"POST {url} answered {http_status}, SQS message id {message_id}")
    except StepFailed as error:
        report.failed("send", str(error))
        return

    log_group = f"/aws/lambda/{settings.worker_name}"  # the worker's own log group (worker.py)
    if sent.message_id is not None:
        pattern, ours = f'"{sent.message_id}"', _with_id(sent.message_id)
    else:  # a WebSocket reply carries no message id: the processed line whose result is the reply
        pattern, ours = f'"{PROCESSED}"', _with_result(sent.reply)
    try:
        line = find_log_line(
            client("logs"),
            log_group,
            pattern=pattern,
            start_ms=int((sent.sent_at - CLOCK_SKEW_SECONDS) * 1000),
            ours=ours,
            deadline=deadline,
            poll_seconds=poll_seconds,
        )
    except StepFailed as error:
        report.failed("worker log", str(error))
    except (ClientError, BotoCoreError) as error:
        report.failed("worker log", f"could not search {log_group}: {error}")
    else:
        waited = clock() - started
        result = json.dumps(line.get("result"))[:200]
        report.ok(
            "worker log",
            f"`{PROCESSED}` in {log_group} after {waited:.0f} s, message id {line.get('message_id')}, result {result}",
        )


def _with_id(message_id: str) -> LogMatch:
    return lambda line: line.get("message_id") == message_id


def _with_result(reply: Any) -> LogMatch:
    return lambda line: line.get("message") == PROCESSED and line.get("result") == reply


def _clients(session: Any, region: str) -> Callable[[str], Any]:
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, region_name=region)
        return made[service]

    return client


def main(argv: list[str] | None = None, *, session: Any = None, poll_seconds: float = POLL_SECONDS) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=None, help=f"stage to check (default {ANSWERS.stage})")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the worker (default {DEFAULT_TIMEOUT_SECONDS:.0f})",
    )
    parser.add_argument("--body", default=None, help='the message to send (default {"integration_check": "<id>"})')
    parser.add_argument("--strict", action="store_true", help="exit 1 instead of 0 when the check is skipped")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    settings = ANSWERS.for_stage(args.stage)
    session = session or boto3.session.Session()
    # The region `make deploy` deploys to: AWS_REGION first (the CDK CLI reads it), then the session's.
    region = os.environ.get("AWS_REGION") or session.region_name
    report = Report()
    try:
        if not region:
            credentials_of(session)  # no credentials either: a plain skip
            raise StepFailed("no AWS region configured (set AWS_REGION or a profile's region)")
        check(
            settings,
            session,
            region,
            timeout=args.timeout,
            poll_seconds=poll_seconds,
            body=args.body,
            report=report,
        )
    except Skip as skip:
        report.out(f"SKIP: {skip}")
        return 1 if args.strict else 0
    except StepFailed as error:
        report.out(f"FAIL: {error}")
        return 1
    except (ClientError, BotoCoreError) as error:
        report.out(f"FAIL: {type(error).__name__}: {error}")
        return 1
    if report.failures:
        report.out(f"FAIL: {', '.join(report.failures)}")
        return 1
    report.out(f"PASS: a message went from the API through {settings.queue_name} to the worker; no dead letters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
