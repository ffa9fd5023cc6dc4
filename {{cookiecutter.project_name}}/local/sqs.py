"""A local SQS: moto's server on 127.0.0.1, holding the stack's queue and dead-letter queue under their real names.

moto keeps what matters here as SQS does (visibility timeout, redrive after maxReceiveCount, FIFO groups and
deduplication, message attributes, the 1 MiB limit). Three things it leaves out are added by `post`, the door API
Gateway's integrations knock on: the characters SQS refuses in a message body, in a message group id or in a
deduplication id (moto takes any), and SQS's JSON answers for a caller that asks for `Accept: application/json`
(moto answers XML whatever is asked). The server runs in a process of its own (local.sqs_server, with its patches
of moto), beside the API and the pollers rather than sharing one interpreter (and its lock) with them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .walls import credentials_of

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account: queue URLs and ARNs name it
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # moto takes any
JSON = "application/json"

# SQS's rules (SendMessage reference): a group or deduplication id is 1-128 alphanumeric or punctuation characters;
# a body holds only these Unicode characters, and SQS refuses one with any other (InvalidMessageContents). The
# reference said from mid-2024 to September 2025 that SQS replaced such characters with U+FFFD instead; its editions
# since (and the SDKs generated from them, e.g. botocore 1.44) say it refuses them again.
ID_PATTERN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
BODY_PATTERN = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


class PortInUse(Exception):
    """A port the emulator needs is taken; the message names the variable that moves it."""


def ensure_free(port: int, variable: str) -> None:
    """Fail early and clearly: a server that cannot bind fails in its own thread, where nobody hears it."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise PortInUse(
                f"{HOST}:{port} is already in use ({error.strerror}); set {variable} to a free port, e.g. "
                f"`make local {variable}={port + 1}`"
            ) from error


@dataclass(frozen=True)
class QueueSpec:
    """A queue as synthesized: its name, its attributes as CreateQueue takes them, and its dead-letter queue."""

    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    dead_letter_queue: str | None = None
    max_receive_count: int | None = None

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"


@dataclass
class Answer:
    """What SQS answered an HTTP request: the status and the body."""

    status: int
    body: str


# Connections to the local servers kept open between requests, by (host, port); each used by one request at a time.
_idle: dict[tuple[str | None, int | None], list[http.client.HTTPConnection]] = defaultdict(list)
_idle_lock = threading.Lock()


def _address(url: str) -> tuple[str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port


def post(url: str, data: bytes, headers: dict[str, str]) -> Answer:
    """POST to a local server over a connection kept open (HTTP/1.1 keep-alive, as API Gateway and SDK clients
    do): a new TCP connection and server thread for every request would cost more than the request itself."""
    address = _address(url)
    while True:
        with _idle_lock:
            kept = _idle[address].pop() if _idle[address] else None
        connection = kept or http.client.HTTPConnection(*address, timeout=30)
        try:
            connection.request("POST", urllib.parse.urlsplit(url).path or "/", body=data, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.read().decode("utf-8"))
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if kept:  # the server had closed the kept connection before reading the request: again, on a new one
                continue
            raise
        except BaseException:
            connection.close()
            raise
        with _idle_lock:
            _idle[address].append(connection)
        return answer


def close_connections(url: str) -> None:
    """Close the connections kept open to a server, before it stops: the side that closes a connection first holds
    its port in TIME_WAIT for a minute, and a stopped server's port must be free at once."""
    with _idle_lock:
        kept = _idle.pop(_address(url), [])
    for connection in kept:
        connection.close()


def form_fields(form: str) -> dict[str, str]:
    """Decode a query request's form as SQS does: strictly, as UTF-8, each field once."""
    fields = urllib.parse.parse_qs(form, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise ValueError(f"fields given more than once: {repeated}")
    return {name: values[0] for name, values in fields.items()}


def refusal(fields: dict[str, str]) -> tuple[str, str] | None:
    """(code, message) of the error SQS gives a SendMessage that moto would wrongly take, or None."""
    body = fields.get("MessageBody", "")
    if not BODY_PATTERN.fullmatch(body):
        bad = next(ch for ch in body if not BODY_PATTERN.fullmatch(ch))
        return "InvalidMessageContents", f"Invalid binary character '#x{ord(bad):X}' was found in the message body."
    for name in ("MessageGroupId", "MessageDeduplicationId"):
        if name in fields and not ID_PATTERN.fullmatch(fields[name]):
            return (
                "InvalidParameterValue",
                f"Value {fields[name]} for parameter {name} is invalid. Reason: {name} can only include "
                "alphanumeric and punctuation characters. 1 to 128 in length.",
            )
    return None


def error_answer(code: str, message: str, *, as_json: bool) -> Answer:
    if as_json:
        return Answer(400, json.dumps({"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": ""}))
    return Answer(
        400,
        '<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message><Detail/></Error>"
        "<RequestId></RequestId></ErrorResponse>",
    )


def as_json(xml_answer: str) -> str:
    """SQS's query answer in the JSON shape SQS uses for `Accept: application/json` (the shape API Gateway gets)."""
    root = ElementTree.fromstring(xml_answer)

    def text(name: str) -> str | None:
        found = root.find(".//{*}" + name)
        return found.text if found is not None else None

    if root.tag.endswith("ErrorResponse"):
        error = {"Code": text("Code"), "Message": text("Message"), "Type": text("Type")}
        return json.dumps({"Error": error, "RequestId": text("RequestId")})
    action = root.tag.split("}")[-1]  # e.g. SendMessageResponse
    result = {
        "MD5OfMessageAttributes": text("MD5OfMessageAttributes"),
        "MD5OfMessageBody": text("MD5OfMessageBody"),
        "MD5OfMessageSystemAttributes": text("MD5OfMessageSystemAttributes"),
        "MessageId": text("MessageId"),
        "SequenceNumber": text("SequenceNumber"),
    }
    metadata = {"RequestId": text("RequestId")}
    return json.dumps({action: {"ResponseMetadata": metadata, action.replace("Response", "Result"): result}})


class LocalSqs:
    """moto's server on 127.0.0.1:`port` (0: any free port), in a process of its own, and a boto3 client for it."""

    def __init__(
        self,
        port: int = 0,
        *,
        variable: str = "LOCAL_SQS_PORT",
        region: str = REGION,
        walls: Path | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        """`walls`: the walls' spec (local/walls.py); each request it refuses is logged, and kept in `refusals`."""
        ensure_free(port, variable)
        project = Path(__file__).resolve().parent.parent
        self._server = subprocess.Popen(
            [sys.executable, "-m", "local.sqs_server", str(port), *([str(walls)] if walls else [])],
            cwd=project,
            env=os.environ | {"PYTHONPATH": str(project)},
            stdin=subprocess.PIPE,  # the server stops when this closes (stop(), or this process ending)
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.refusals: list[str] = []
        self._log = log
        threading.Thread(target=self._relay, name="sqs-stderr", daemon=True).start()
        assert self._server.stdout is not None
        bound = self._server.stdout.readline().strip()  # the port, once the server listens
        if not bound.isdigit():
            self._server.wait()
            raise RuntimeError(f"the local SQS server did not start (exit status {self._server.returncode})")
        self.port = int(bound)
        self.endpoint = f"http://{HOST}:{self.port}"
        self.region = region  # moto keeps one set of queues per region (and per server process)
        self.client = boto3.client("sqs", region_name=region, endpoint_url=self.endpoint, **CREDENTIALS)

    def _relay(self) -> None:
        """The server's stderr, line by line: the walls' refusals (kept and logged), and whatever else it says."""
        assert self._server.stderr is not None
        for line in self._server.stderr:
            line = line.rstrip("\n")
            if line.startswith("walls: "):
                self.refusals.append(line.removeprefix("walls: "))
            self._log(line)

    def recreate(self, queues: list[QueueSpec]) -> dict[str, str]:
        """The queues, empty: any of these names that exists is deleted first (messages, deduplication ids)."""
        existing = self.client.list_queues().get("QueueUrls", [])
        for spec in queues:
            if self.url(spec.name) in existing:
                self.client.delete_queue(QueueUrl=self.url(spec.name))
        return self.create(queues)

    def create(self, queues: list[QueueSpec], *, visibility_timeout: int | None = None) -> dict[str, str]:
        """Create the queues (dead-letter queues first), optionally with a shorter visibility timeout; name -> URL."""
        urls: dict[str, str] = {}
        for spec in sorted(queues, key=lambda q: q.dead_letter_queue is not None):
            attributes = dict(spec.attributes)
            if visibility_timeout is not None:
                attributes["VisibilityTimeout"] = str(visibility_timeout)
            if spec.dead_letter_queue:
                target = self.arn(spec.dead_letter_queue)
                policy = {"deadLetterTargetArn": target, "maxReceiveCount": spec.max_receive_count}
                attributes["RedrivePolicy"] = json.dumps(policy)
            urls[spec.name] = self.client.create_queue(QueueName=spec.name, Attributes=attributes)["QueueUrl"]
        return urls

    def client_as(self, role: str) -> Any:
        """An SQS client signing as one of the stack's roles (its requests are decided by the walls)."""
        return boto3.client("sqs", region_name=self.region, endpoint_url=self.endpoint, **credentials_of(role))

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{ACCOUNT}/{name}"

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"

    def post(
        self, queue_name: str, form: str, headers: dict[str, str], credentials: dict[str, str] | None = None
    ) -> Answer:
        """An SQS query request as an API Gateway integration sends it: the form, POSTed to the queue's URL with the
        integration's headers and signed with its role's credentials (local/walls.py; else the emulator's own). SQS's
        answer comes back as SQS would give it."""
        wants_json = any(k.lower() == "accept" and v == JSON for k, v in headers.items())
        try:
            fields = form_fields(form)
        except (ValueError, UnicodeDecodeError) as error:
            return error_answer("MalformedQueryString", str(error), as_json=wants_json)
        if refused := refusal(fields):
            return error_answer(*refused, as_json=wants_json)
        url = self.url(queue_name)
        request = AWSRequest("POST", url, data=form.encode("utf-8"), headers=headers)
        SigV4Auth(Credentials(*(credentials or CREDENTIALS).values()), "sqs", self.region).add_auth(request)
        answer = post(url, request.body, dict(request.headers))
        if wants_json and answer.body.lstrip().startswith("<"):
            answer.body = as_json(answer.body)
        return answer

    def send(
        self,
        queue_name: str,
        parameters: dict[str, str],
        headers: dict[str, str] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> Answer:
        """SendMessage with these request parameters (the HTTP API's SQS-SendMessage integration)."""
        form = urllib.parse.urlencode({"Action": "SendMessage", **parameters}, quote_via=urllib.parse.quote)
        content_type = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self.post(queue_name, form, content_type | (headers or {}), credentials)

    def stop(self) -> None:
        """Stop the server; its port is free when this returns."""
        self.client.close()
        close_connections(self.endpoint)
        assert self._server.stdin is not None
        self._server.stdin.close()
        try:
            self._server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
