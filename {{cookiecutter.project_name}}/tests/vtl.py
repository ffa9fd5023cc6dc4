"""API Gateway's mapping-template engine in Python, and a local SQS to hand its output to (REST and WebSocket).

The contract tests read the VTL templates from the *synthesized* CloudFormation template and render them here with
airspeed against Python stand-ins for API Gateway's `$input`, `$util` and `$context`. A rendered SendMessage form
is then decoded the way SQS decodes a query request (`form_fields`) and POSTed, as the integration would POST it,
to a local SQS (moto server) that stores what it understood (`LocalSqs`).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import airspeed
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"

# Bodies that break a naive template: form syntax, URL-reserved characters, escapes, raw control whitespace,
# non-ASCII, VTL look-alikes, and one large enough to show nothing is cut. Each must reach SQS byte for byte.
JSON_OBJECT_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20&c=%26", "plus": "+", "pct": "100%"}',
    "url-reserved": '{"u": "https://x.test/a?b=c&d=e#f~g*h;i,j:k@l$m!n(o)p/q"}',
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp\\\\new", "single": "it\'s"}',
    "json-escapes": '{"text": "line 1\\nline 2\\tTabbed \\u00e9 \\ud83d\\ude80"}',
    "raw-control-whitespace": '{\n\t"pretty": true,\r\n\t"list": [1, 2]\n}\r\n',
    "non-ascii": '{"name": "Zoë Ñandú Ærøskøbing 漢字 Привет", "rtl": "שלום", "emoji": "🚀🎉👩‍👩‍👧 \U0001f9ea"}',
    "velocity-lookalikes": (
        '{"t": "$input.body $context.requestId #set($x = 1) ## not a comment ${x} $util.urlEncode(1)"}'
    ),
    "large-200kb": json.dumps({"blob": 'x&=+%é"\\\n🚀' * 20000}),
}
# A WebSocket frame need not be JSON at all.
ANY_TEXT_BODIES = JSON_OBJECT_BODIES | {
    "bare-ampersands-and-equals": "&&==&=&",
    "plus-and-percent": "+ %2B %% %zz 100%",
    "leading-and-trailing-spaces": "   spaced out   ",
    "json-array": "[1, 2, 3]",
    "not-json-at-all": "plain text & more = 100% + love",
}


# --- $input, $util, $context -----------------------------------------------------------------------------------------


class JavaString(str):
    """A str with the java.lang.String methods templates call (on $input.body, say)."""

    def trim(self) -> JavaString:
        return JavaString(self.strip("".join(map(chr, range(33)))))  # Java trims code points <= U+0020 only

    def startsWith(self, prefix: str) -> bool:  # noqa: N802 (Java names)
        return self.startswith(prefix)

    def contains(self, text: str) -> bool:
        return text in self

    def length(self) -> int:
        return len(self.encode("utf-16-le")) // 2  # Java counts UTF-16 code units

    def isEmpty(self) -> bool:  # noqa: N802
        return not self

    def matches(self, regex: str) -> bool:
        return re.fullmatch(regex, self, flags=re.DOTALL) is not None

    def replaceAll(self, regex: str, replacement: str) -> JavaString:  # noqa: N802
        return JavaString(re.sub(regex, re.sub(r"\$(\d)", r"\\\1", replacement), self))


class UnparsableBody(Exception):
    """API Gateway refuses the request: 'Could not parse request body into json'."""


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise UnparsableBody(str(error)) from error


def json_path(document: Any, path: str) -> Any:
    """The JSONPath subset the templates use: `$` and `$.a.b` (a missing key is null, as in API Gateway)."""
    if not re.fullmatch(r"\$(\.\w+)*", path):
        raise AssertionError(f"template uses a JSONPath these tests do not know: {path}")
    for key in path.split(".")[1:]:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def url_encode(text: str) -> str:
    """Java's URLEncoder.encode(text, "UTF-8"), which is $util.urlEncode: keeps A-Z a-z 0-9 . - * _, space -> '+'."""
    return urllib.parse.quote_plus(str(text), safe="*").replace("~", "%7E")  # Python keeps '~'; Java does not


class Input:
    """$input: the body (of the request, or of SQS's answer in a response template), JSONPath, and parameters."""

    def __init__(self, body: str, headers: dict[str, str] | None = None) -> None:
        self.body = JavaString(body)
        self._headers = headers or {}

    def path(self, path: str) -> Any:
        value = json_path(parse_json(self.body), path)
        return JavaString(value) if isinstance(value, str) else value

    def json(self, path: str) -> str:
        return json.dumps(json_path(parse_json(self.body), path), ensure_ascii=False)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return {"path": {}, "querystring": {}, "header": self._headers}
        # Path, then query string, then header (these APIs have neither of the first two); HTTP header names are
        # case-insensitive.
        return next((value for key, value in self._headers.items() if key.lower() == name.lower()), "")


class Util:
    """$util: the functions the templates may call."""

    @staticmethod
    def urlEncode(value: str) -> str:  # noqa: N802 (VTL names)
        return url_encode(value)

    @staticmethod
    def urlDecode(value: str) -> str:  # noqa: N802
        return urllib.parse.unquote_plus(str(value))

    @staticmethod
    def escapeJavaScript(value: str) -> str:  # noqa: N802
        # Java's StringEscapeUtils.escapeJavaScript: JSON string escapes, plus \' and \/
        escapes = {"\\": "\\\\", '"': '\\"', "'": "\\'", "/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
        escapes |= {"\b": "\\b", "\f": "\\f"}
        return "".join(escapes.get(ch, ch if ord(ch) >= 32 else f"\\u{ord(ch):04x}") for ch in str(value))

    @staticmethod
    def parseJson(value: str) -> Any:  # noqa: N802
        return parse_json(value)


def rest_context(request_id: str = "req-1") -> dict[str, Any]:
    """$context of a REST API request. A response template may set responseOverride.status."""
    return {
        "requestId": request_id,
        "extendedRequestId": request_id,
        "stage": "test",
        "httpMethod": "POST",
        "resourcePath": "/messages",
        "responseOverride": {},
    }


def websocket_context(connection_id: str, request_id: str) -> dict[str, Any]:
    """$context of a WebSocket frame on $default."""
    return {
        "connectionId": connection_id,
        "requestId": request_id,
        "extendedRequestId": request_id,
        "messageId": "L0SM9fFgvHcCIhw=",
        "routeKey": "$default",
        "eventType": "MESSAGE",
        "stage": "dev",
        "apiId": "a1b2c3d4e5",
        "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "connectedAt": 1700000000000,
        "requestTimeEpoch": 1700000000123,
        "identity": {"sourceIp": "203.0.113.7"},
    }


def render(template: str, body: str, *, context: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    """The template's output for this body. `context` is $context; read responseOverride from it afterwards."""
    return airspeed.Template(template).merge({"input": Input(body, headers), "util": Util(), "context": context})


# --- what SQS makes of the form ---------------------------------------------------------------------------------------


def form_fields(form: str) -> dict[str, str]:
    """Decode the form as SQS does (strictly, as UTF-8); every field must appear once."""
    fields = urllib.parse.parse_qs(form, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")
    assert all(len(values) == 1 for values in fields.values()), fields.keys()
    return {name: values[0] for name, values in fields.items()}


def is_one_line_of_ascii(form: str) -> bool:
    """A newline or space in the form would become part of a value; SQS wants the form percent-encoded."""
    return form.isascii() and form.isprintable() and " " not in form


def message_attributes(fields: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (data type, string value), from the numbered MessageAttribute.N.* fields."""
    numbers = sorted({m.group(1) for name in fields if (m := re.fullmatch(r"MessageAttribute\.(\d+)\.Name", name))})
    return {
        fields[f"MessageAttribute.{n}.Name"]: (
            fields[f"MessageAttribute.{n}.Value.DataType"],
            fields[f"MessageAttribute.{n}.Value.StringValue"],
        )
        for n in numbers
    }


def integration_headers(request_parameters: dict[str, str]) -> dict[str, str]:
    """The static headers an integration's RequestParameters add ("integration.request.header.X": "'value'")."""
    prefix = "integration.request.header."
    return {
        name.removeprefix(prefix): value.strip("'")
        for name, value in request_parameters.items()
        if name.startswith(prefix) and value.startswith("'")
    }


@dataclass
class Answer:
    status: int
    body: str


@dataclass
class LocalSqs:
    """One queue in a local SQS (moto server), reached over HTTP as API Gateway reaches SQS."""

    client: Any
    url: str

    def post(self, form: str, headers: dict[str, str]) -> Answer:
        """POST the form (it must be ASCII) with the integration's headers, SigV4-signed as its role signs it."""
        request = AWSRequest("POST", self.url, data=form.encode("ascii"), headers=headers)
        SigV4Auth(Credentials("testing", "testing"), "sqs", REGION).add_auth(request)
        prepared = urllib.request.Request(self.url, data=request.body, headers=dict(request.headers), method="POST")
        try:
            with urllib.request.urlopen(prepared, timeout=10) as response:
                return Answer(response.status, response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode("utf-8"))

    def messages(self) -> list[dict[str, Any]]:
        """Every message the queue holds now (received, with all attributes, and deleted)."""
        answer = self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        for message in messages:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def send(self, form: str, headers: dict[str, str]) -> tuple[Answer, dict[str, Any]]:
        """POST the form; SQS must accept it and store exactly one message, which is returned."""
        answer = self.post(form, headers)
        assert answer.status == 200, answer.body
        [message] = self.messages()
        return answer, message


@contextmanager
def local_sqs(queue_name: str, *, fifo: bool) -> Iterator[LocalSqs]:
    """A fresh moto server on 127.0.0.1 holding one empty queue of this name and type."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start from nothing (a FIFO queue remembers its
        # deduplication ids, and an earlier test may have left messages behind).
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
        client = boto3.client(
            "sqs",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        attributes = {"FifoQueue": "true"} if fifo else {}
        yield LocalSqs(client, client.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"])
    finally:
        server.stop()
