"""make integration, offline: moto (mock_aws) plays CloudFormation, SQS and CloudWatch Logs, and a server on 127.0.0.1
plays the deployed API and worker. The stand-in checks the SigV4 signature as API Gateway's IAM auth would (and
refuses a bad one), requires the FIFO group header, runs the real logic.process on the message, writes the worker's
JSON log line into the worker's log group and, for a WebSocket, replies on the connection.

ops/integration.py is shared by the three flavours, so the happy path runs for each flavour, auth and queue type
(the project's answers with those fields replaced), whichever flavour this project was generated with."""

from __future__ import annotations

import dataclasses
import hmac
import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws
from websockets.sync.server import serve

from {{ cookiecutter.__package_name }}.settings import ANSWERS, Settings

import logic
from ops import integration

REGION = "eu-west-1"
KEYS = Credentials("AKIDINTEGRATIONTEST", "integration-test-secret", "integration-test-session-token")
POLL = 0.05  # seconds between two log searches in these tests
# One botocore session for every test's caller: it loads each service model once (a new one takes ~0.2 s per test).
CALLER = botocore.session.Session()
CALLER.set_credentials(KEYS.access_key, KEYS.secret_key, KEYS.token)


def client(service: str) -> Any:
    """A (moto) client with the caller's session, for the tests' own calls (moto resets boto3's default session)."""
    return boto3.Session(botocore_session=CALLER, region_name=REGION).client(service)


AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def signature_is_valid(method: str, path: str, headers: Any, body: bytes) -> bool:
    """Recompute the request's SigV4 signature from what arrived (the signed headers, the body) with the caller's
    keys, as API Gateway does for IAM auth."""
    match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
    if not match or match["key"] != KEYS.access_key or match["service"] != "execute-api":
        return False
    signed = {name: headers[name] for name in match["signed"].split(";")}
    request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body, headers=signed)
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(KEYS, "execute-api", match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, match["signature"])


class StandIn:
    """The deployed API and worker: what each request looked like, and the worker's log lines."""

    def __init__(self, settings: Settings, *, worker_logs: bool = True) -> None:
        self.settings = settings
        self.worker_logs = worker_logs
        self.requests: list[dict[str, Any]] = []
        self.logs = client("logs")
        self.group = f"/aws/lambda/{settings.worker_name}"

    def refuses(self, method: str, path: str, headers: Any, body: bytes) -> bool:
        """Record the request; True when IAM auth refuses it."""
        valid = signature_is_valid(method, path, headers, body)
        lowered = {name.lower(): value for name, value in headers.items()}
        request = {"method": method, "path": path, "headers": lowered, "body": body, "signed": valid}
        self.requests.append(request)
        return self.settings.api_auth == "iam" and not valid

    def work(self, body: str) -> tuple[str, Any]:
        """The queue and the worker: the SQS message id, and the result of the real logic (None if it failed)."""
        message_id = str(uuid.uuid4())
        try:
            line = {"message": "Message processed", "result": logic.process(json.loads(body))}
        except logic.RejectedMessage as error:
            reason = f"{type(error).__name__}: {error}"
            line = {"message": "Message rejected; sent to the dead-letter queue", "reason": reason}
        except Exception as error:
            line = {"message": "Message failed; it returns to the queue", "error": f"{type(error).__name__}: {error}"}
        if self.worker_logs:
            other = {"level": "INFO", "message": "Message processed", "message_id": str(uuid.uuid4()), "result": {}}
            ours = {"level": line.pop("level", "INFO"), "message_id": message_id, **line}
            now = int(time.time() * 1000)
            events = ["START RequestId: 1 Version: $LATEST", json.dumps(other), json.dumps(ours)]
            self.logs.put_log_events(
                logGroupName=self.group,
                logStreamName="worker",
                logEvents=[{"timestamp": now, "message": event} for event in events],
            )
        return message_id, line.get("result")


class HttpStandIn(StandIn):
    """POST /messages as the HTTP API (SQS's SendMessage answer) or the REST API (202 {"messageId": ...})."""

    def __enter__(self) -> str:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if stand_in.refuses("POST", self.path, self.headers, body):
                    return self.answer(403, {"message": "Forbidden"})
                if stand_in.settings.fifo and not self.headers.get("X-Message-Group-Id"):
                    return self.answer(400, {"message": "Missing required request parameters: [X-Message-Group-Id]"})
                message_id, _ = stand_in.work(body.decode())
                if stand_in.settings.api_flavour == "rest":
                    return self.answer(202, {"messageId": message_id})
                result = {"MessageId": message_id, "MD5OfMessageBody": "x", "SequenceNumber": None}
                return self.answer(200, {"SendMessageResponse": {"SendMessageResult": result}})

            def answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/messages"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebSocketStandIn(StandIn):
    """A WebSocket at /<stage>: IAM auth on the handshake; the worker replies each frame's result on the connection."""

    def __enter__(self) -> str:
        def authorize(connection: Any, request: Any) -> Any:
            if self.refuses("GET", request.path, request.headers, b""):
                return connection.respond(403, "Forbidden\n")
            return None

        def frames(connection: Any) -> None:
            for frame in connection:
                self.requests[-1].setdefault("frames", []).append(frame)
                _, result = self.work(frame)
                if result is not None:
                    connection.send(json.dumps(result))

        self.server = serve(frames, "127.0.0.1", 0, process_request=authorize)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/{self.settings.stage}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def aws(monkeypatch) -> Iterator[boto3.Session]:
    """moto for every AWS call, and a session with the caller's keys (a session token too)."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # the stand-in is on 127.0.0.1
    with mock_aws():
        yield boto3.Session(botocore_session=CALLER, region_name=REGION)


def deploy(settings: Settings, url: str) -> None:
    """The stack as `make deploy` leaves it, as far as the check reads it: its URL output, the dead-letter queue
    and the worker's log group."""
    fifo = {"FifoQueue": True} if settings.fifo else {}
    template = {
        "Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": settings.dlq_name, **fifo}},
            "WorkerLogs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/aws/lambda/{settings.worker_name}"},
            },
        },
        "Outputs": {"MessagesUrl": {"Value": url}},
    }
    client("cloudformation").create_stack(StackName=settings.stack_name, TemplateBody=json.dumps(template))


@pytest.fixture
def deployed(aws, monkeypatch):
    """Deploy a variant of the project (the answers with some fields replaced) behind its stand-in API; yields
    the stand-in once the stack is up."""
    stand_ins: list[StandIn] = []

    def up(worker_logs: bool = True, **replaced: str) -> StandIn:
        settings = dataclasses.replace(ANSWERS, **replaced)
        monkeypatch.setattr(integration, "ANSWERS", settings)
        kind = WebSocketStandIn if settings.api_flavour == "websocket" else HttpStandIn
        stand_in = kind(settings, worker_logs=worker_logs)
        stand_ins.append(stand_in)
        deploy(settings, stand_in.__enter__())
        stand_in.logs.create_log_stream(logGroupName=stand_in.group, logStreamName="worker")
        return stand_in

    yield up
    for stand_in in stand_ins:
        stand_in.__exit__(None, None, None)


@dataclasses.dataclass
class Clock:
    """The check's clock, moved on only by its own waits between log searches: what it waited for, not how long the
    machine took."""

    now: float = 0.0
    waits: list[float] = dataclasses.field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(integration, "clock", fake)
    monkeypatch.setattr(integration, "pause", fake.sleep)
    return fake


def run(session: boto3.Session, *args: str) -> int:
    return integration.main(list(args), session=session, poll_seconds=POLL)


VARIANTS = [
    {"api_flavour": flavour, "api_auth": auth, "queue_type": queue}
    for flavour in ("http", "rest", "websocket")
    for auth in ("iam", "none")
    for queue in ("standard", "fifo")
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_a_message_through_the_api_to_the_worker_log_with_no_dead_letters_passes(variant, aws, deployed, capsys):
    stand_in = deployed(**variant)
    settings = stand_in.settings

    assert run(aws, "--timeout", "5") == 0

    out = capsys.readouterr().out
    [request] = stand_in.requests
    assert request["signed"] is (settings.api_auth == "iam")
    if settings.api_auth == "none":
        assert "authorization" not in request["headers"]
    else:  # temporary credentials: the token is sent and signed
        assert request["headers"]["x-amz-security-token"] == KEYS.token
        assert f"/{REGION}/execute-api/aws4_request" in request["headers"]["authorization"]
    if settings.api_flavour == "websocket":
        [frame] = request["frames"]
        assert request["path"] == f"/{settings.stage}"
        assert f"the worker replied {json.dumps(logic.process(json.loads(frame)))}" in out
    else:
        assert request["path"] == "/messages"
        assert request["headers"]["content-type"] == "application/json"
        assert request["headers"].get("x-message-group-id") == ("integration-check" if settings.fifo else None)
    tag = re.search(r"check ([0-9a-f]{32})\n", out)[1]  # the check's unique id, sent in the message
    body = request["frames"][0] if settings.api_flavour == "websocket" else request["body"]
    assert json.loads(body) == {"integration_check": tag}
    assert re.search(r"worker log +`Message processed` in /aws/lambda/\S+ after \d+ s, message id [0-9a-f-]{36}", out)
    assert f"{settings.dlq_name} is empty" in out
    assert "FAILED" not in out
    assert out.rstrip().splitlines()[-1].startswith("PASS")


def test_the_message_is_the_tagged_one_and_its_own_log_line_is_found(aws, deployed, capsys, answers):
    """http/rest: the log line is found by the SQS message id the API answered, not by any processed line."""
    stand_in = deployed(api_flavour="rest")
    assert run(aws, "--timeout", "5") == 0
    out = capsys.readouterr().out
    answered = re.search(r"SQS message id ([0-9a-f-]{36})", out)[1]
    result = json.dumps({"status": "processed", "fields": ["integration_check"]})
    assert f"message id {answered}, result {result}\n" in out
    assert stand_in.requests[0]["signed"] is (answers["api_auth"] == "iam")


def test_dead_letters_fail_the_check(aws, deployed, capsys):
    stand_in = deployed()
    sqs = client("sqs")
    dlq_url = sqs.get_queue_url(QueueName=stand_in.settings.dlq_name)["QueueUrl"]
    group = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if stand_in.settings.fifo else {}
    sqs.send_message(QueueUrl=dlq_url, MessageBody='{"reject": true}', **group)

    assert run(aws, "--timeout", "5") == 1

    out = capsys.readouterr().out
    assert re.search(r"worker log +`Message processed`", out)  # the message itself went through
    assert f"dead letters FAILED: 1 message(s) wait in {stand_in.settings.dlq_name}" in out
    assert "make redrive" in out
    assert out.rstrip().splitlines()[-1] == "FAIL: dead letters"


def test_a_log_line_that_never_comes_fails_after_the_timeout(aws, deployed, capsys, clock, expected):
    deployed(worker_logs=False)

    assert run(aws, "--timeout", "0.5") == 1

    assert set(clock.waits) == {POLL} and sum(clock.waits) <= 0.5 < sum(clock.waits) + POLL  # searched until then
    out = capsys.readouterr().out
    group = f"/aws/lambda/{expected.worker_name}"
    assert f"worker log   FAILED: no `Message processed` line for the message in {group} in time" in out
    assert f"{expected.dlq_name} is empty" in out  # the other steps still run and report
    assert out.rstrip().splitlines()[-1] == "FAIL: worker log"


def test_a_message_the_worker_fails_fails_the_check_at_once(aws, deployed, capsys, clock):
    deployed(api_flavour="http")

    assert run(aws, "--timeout", "30", "--body", '{"fail": true}') == 1

    assert clock.waits == []  # not after the timeout: the worker's failure line, found by the first search, says it all
    out = capsys.readouterr().out
    error = "RuntimeError: the message asked to fail (a stand-in for a bug or an outage)"
    assert f"worker log   FAILED: the worker failed the message ({error}); it returns to the queue" in out


def test_a_message_the_worker_rejects_fails_the_check_at_once(aws, deployed, capsys, clock):
    deployed(api_flavour="http")

    assert run(aws, "--timeout", "30", "--body", '{"reject": true}') == 1

    assert clock.waits == []
    out = capsys.readouterr().out
    reason = "RejectedMessage: the message asked to be rejected"
    assert f"worker log   FAILED: the worker rejected the message ({reason}); it is in the dead-letter queue" in out


def test_a_refused_signature_fails_the_send_step(aws, deployed, capsys):
    stand_in = deployed(api_auth="iam")
    wrong = boto3.Session(aws_access_key_id="AKIDSOMEONEELSE", aws_secret_access_key="x", region_name=REGION)

    assert run(wrong, "--timeout", "5") == 1

    out = capsys.readouterr().out
    assert stand_in.requests[0]["signed"] is False
    assert "send         FAILED:" in out and "403" in out
    assert "worker log" not in out  # nothing was sent, so nothing is waited for


def test_without_credentials_the_check_is_skipped(monkeypatch, tmp_path, capsys):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup (no network)
    monkeypatch.setenv("AWS_REGION", REGION)

    class NoCalls(boto3.Session):
        def client(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no AWS call without credentials")

    assert integration.main([], session=NoCalls()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["SKIP: no AWS credentials (botocore's default chain found none); nothing to check"]
    assert integration.main(["--strict"], session=NoCalls()) == 1


def test_a_stack_that_is_not_deployed_is_skipped(aws, capsys, answers):
    assert run(aws, "--stage", "other") == 0
    stack = f"{answers['project_name']}-other-queue-stack"
    assert capsys.readouterr().out == f"SKIP: {stack} is not deployed (`make deploy` first); nothing to check\n"
    assert run(aws, "--stage", "other", "--strict") == 1
