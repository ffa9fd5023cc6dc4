"""A local SQS: moto's server on 127.0.0.1, holding the stack's queue and dead-letter queue under their real names.

moto keeps what matters here as SQS does (visibility timeout, redrive after maxReceiveCount, FIFO groups and
deduplication, message attributes, the 1 MiB limit). Three things it leaves out are added by `post`, the door API
Gateway's integrations knock on: the characters SQS refuses in a message body, in a message group id or in a
deduplication id (moto takes any), and SQS's JSON answers for a caller that asks for `Accept: application/json`
(moto answers XML whatever is asked). Two patches of moto 5.2 (pinned) follow: FIFO group order, and speed.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core.utils import unix_time
from moto.server import ThreadedMotoServer
from moto.sqs.models import Message, Queue, SQSBackend

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account: queue URLs and ARNs name it
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # moto takes any
JSON = "application/json"

# SQS's rules (SendMessage reference): a group or deduplication id is 1-128 alphanumeric or punctuation characters;
# a body holds only these Unicode characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
BODY_PATTERN = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _groups_in_flight(queue: Queue) -> set[str]:
    """The FIFO message groups with a message in flight *now*. moto 5.2 also counts messages whose visibility
    timeout has run out but that no receive has looked at since; two messages of a group that time out together
    then come back second-first (the first is skipped as "in flight" while the second is taken). SQS keeps the
    order, so this emulator asks moto for the groups SQS would see."""
    return {m.group_id for m in queue.pending_messages if m.group_id is not None and not m.visible}


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's own check, without computing every attribute of the queue (counting all its messages) for each message
    it hands out, which made a receive from a queue of a hundred messages take ~100 ms."""
    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return retention_seconds + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


Queue.pending_message_groups = property(_groups_in_flight)  # type: ignore[assignment]
SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]


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
    """moto's server on 127.0.0.1:`port` (0: any free port) and a boto3 client for it."""

    def __init__(self, port: int = 0, *, variable: str = "LOCAL_SQS_PORT", region: str = REGION) -> None:
        ensure_free(port, variable)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request: the worker's lines matter
        self._server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{bound}"
        self.port = bound
        self.region = region  # moto keeps one set of queues per region (and per process, whatever the server)
        self.client = boto3.client("sqs", region_name=region, endpoint_url=self.endpoint, **CREDENTIALS)

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

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{ACCOUNT}/{name}"

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"

    def post(self, queue_name: str, form: str, headers: dict[str, str]) -> Answer:
        """An SQS query request as an API Gateway integration sends it: the form, POSTed to the queue's URL with the
        integration's headers and signed as its role signs it. SQS's answer comes back as SQS would give it."""
        wants_json = any(k.lower() == "accept" and v == JSON for k, v in headers.items())
        try:
            fields = form_fields(form)
        except (ValueError, UnicodeDecodeError) as error:
            return error_answer("MalformedQueryString", str(error), as_json=wants_json)
        if refused := refusal(fields):
            return error_answer(*refused, as_json=wants_json)
        url = self.url(queue_name)
        request = AWSRequest("POST", url, data=form.encode("utf-8"), headers=headers)
        SigV4Auth(Credentials(*CREDENTIALS.values()), "sqs", self.region).add_auth(request)
        prepared = urllib.request.Request(url, data=request.body, headers=dict(request.headers), method="POST")
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                answer = Answer(response.status, response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.read().decode("utf-8"))
        if wants_json and answer.body.lstrip().startswith("<"):
            answer.body = as_json(answer.body)
        return answer

    def send(self, queue_name: str, parameters: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        """SendMessage with these request parameters (the HTTP API's SQS-SendMessage integration)."""
        form = urllib.parse.urlencode({"Action": "SendMessage", **parameters}, quote_via=urllib.parse.quote)
        content_type = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self.post(queue_name, form, content_type | (headers or {}))

    def stop(self) -> None:
        self._server.stop()
