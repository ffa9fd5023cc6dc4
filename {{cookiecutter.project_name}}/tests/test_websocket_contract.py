"""Contract of the WebSocket $default integration: the request template *as synthesized* delivers the frame byte for byte.

The template is read from the synthesized CloudFormation template (not from the .vtl file), rendered with airspeed
against Python stand-ins for API Gateway's $input, $util and $context, and the form it produces is decoded the way
SQS decodes a query request: with urllib.parse, and by a local SQS (moto server) that receives the very bytes
API Gateway would POST.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import airspeed
import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
CONNECTION_ID = "L0SM9cOFvHcCIhw="  # the shape API Gateway uses: base64, so it carries '=' (and may carry '+', '/')

NASTY_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20&c=%26"}',
    "bare-ampersands-and-equals": "&&==&=&",
    "plus-and-percent": "+ %2B %% %zz 100%",
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp\\\\new", "single": "it\'s"}',
    "newlines-and-tabs": '{"text": "line 1\\nline 2\\tTabbed"}\n',
    "raw-control-whitespace": '{\n\t"pretty": true\r\n}\r\n',
    "leading-and-trailing-spaces": "   spaced out   ",
    "non-ascii": '{"name": "Zoë Ñandú Ærøskøbing 漢字 Привет"}',
    "emoji": "🚀🎉👩‍👩‍👧 \U0001f9ea",
    "velocity-lookalikes": '{"t": "$context.requestId #set($x = 1) ## not a comment $util.urlEncode(1)"}',
    "json-array": "[1, 2, 3]",
    "not-json-at-all": "plain text & more = 100% + love",
    "large-200kb": json.dumps({"blob": "x&=+%é\"\\\n🚀" * 20000}),
}
ATTRIBUTE_NAMES = ("connectionId", "requestId")


# --- API Gateway's template variables, as Python objects airspeed can call -------------------------------------


class JavaString(str):
    """A str with the java.lang.String methods templates call on $input.body."""

    def trim(self) -> JavaString:
        return JavaString(self.strip("".join(map(chr, range(33)))))  # Java trims code points <= U+0020 only

    def startsWith(self, prefix: str) -> bool:  # noqa: N802 (Java name)
        return self.startswith(prefix)

    def length(self) -> int:
        return len(self.encode("utf-16-le")) // 2  # Java counts UTF-16 code units

    def isEmpty(self) -> bool:  # noqa: N802
        return not self

    def matches(self, regex: str) -> bool:
        return re.fullmatch(regex, self, flags=re.DOTALL) is not None

    def replaceAll(self, regex: str, replacement: str) -> JavaString:  # noqa: N802
        return JavaString(re.sub(regex, re.sub(r"\$(\d)", r"\\\1", replacement), self))


class UnparsableBody(Exception):
    """API Gateway refuses the frame: 'Could not parse request body into json'."""


def json_path(document: Any, path: str) -> Any:
    """The JSONPath subset templates use here: `$` and `$.a.b` (a missing key is null)."""
    if not re.fullmatch(r"\$(\.\w+)*", path):
        raise AssertionError(f"template uses a JSONPath this contract test does not know: {path}")
    for key in path.split(".")[1:]:
        document = document.get(key) if isinstance(document, dict) else None
    return document


class Input:
    def __init__(self, body: str) -> None:
        self.body = JavaString(body)

    def _parsed(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise UnparsableBody(str(error)) from error

    def path(self, path: str) -> Any:
        value = json_path(self._parsed(), path)
        return JavaString(value) if isinstance(value, str) else value

    def json(self, path: str) -> str:
        return json.dumps(json_path(self._parsed(), path), ensure_ascii=False)


class Util:
    @staticmethod
    def urlEncode(value: str) -> str:  # noqa: N802 (Java's URLEncoder.encode(value, "UTF-8"))
        return urllib.parse.quote_plus(str(value), safe="*-._")

    @staticmethod
    def urlDecode(value: str) -> str:  # noqa: N802
        return urllib.parse.unquote_plus(str(value))

    @staticmethod
    def escapeJavaScript(value: str) -> str:  # noqa: N802
        escapes = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
        return "".join(escapes.get(ch, ch if ord(ch) >= 32 else f"\\u{ord(ch):04x}") for ch in str(value))

    @staticmethod
    def parseJson(value: str) -> Any:  # noqa: N802
        try:
            return json.loads(value)
        except ValueError as error:
            raise UnparsableBody(str(error)) from error


def context(connection_id: str, request_id: str) -> dict[str, Any]:
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


# --- the template as deployed, and what SQS makes of its output -------------------------------------------------


@pytest.fixture(scope="module")
def send_message_template(synthesized) -> airspeed.Template:
    [integration] = [
        i["Properties"] for i in synthesized.resources("AWS::ApiGatewayV2::Integration").values()
        if i["Properties"]["IntegrationType"] == "AWS"
    ]
    return airspeed.Template(integration["RequestTemplates"]["$default"])


def render(template: airspeed.Template, body: str, *, connection_id: str = CONNECTION_ID, request_id: str = "") -> str:
    request_id = request_id or str(uuid.uuid4())
    return template.merge({"input": Input(body), "util": Util(), "context": context(connection_id, request_id)})


def form_fields(rendered: str) -> dict[str, str]:
    """Decode the form as SQS does; every field must appear once."""
    fields = urllib.parse.parse_qs(rendered, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")
    assert all(len(values) == 1 for values in fields.values()), fields.keys()
    return {name: values[0] for name, values in fields.items()}


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


@pytest.fixture(scope="module")
def local_sqs(settings) -> Iterator[tuple[Any, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    sqs = boto3.client(
        "sqs", region_name=REGION, endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    attributes = {"FifoQueue": "true"} if settings.fifo else {}
    url = sqs.create_queue(QueueName=settings.queue_name, Attributes=attributes)["QueueUrl"]
    yield sqs, url
    server.stop()


def post_like_api_gateway(url: str, rendered: str) -> None:
    """The integration request: POST to .../sqs:path/<account>/<queue> with the template output as the form body."""
    request = urllib.request.Request(
        url,
        data=rendered.encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",  # the integration's request parameter
            # API Gateway signs with the integration role; moto reads only the region from it.
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/sqs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


# --- the contract -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_the_message_body_is_the_frame_body_byte_for_byte(send_message_template, body):
    fields = form_fields(render(send_message_template, body))
    assert fields["Action"] == "SendMessage"
    assert fields["MessageBody"].encode("utf-8") == body.encode("utf-8")


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_sqs_stores_the_frame_body_byte_for_byte(send_message_template, local_sqs, body):
    sqs, url = local_sqs
    post_like_api_gateway(url, render(send_message_template, body))
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert message["Body"].encode("utf-8") == body.encode("utf-8")
    assert message["MessageAttributes"]["connectionId"] == {"DataType": "String", "StringValue": CONNECTION_ID}


@pytest.mark.parametrize("connection_id", [CONNECTION_ID, "a+b/c==", "plain123"])
def test_the_connection_and_request_ids_travel_as_string_attributes(send_message_template, connection_id):
    request_id = "Zm9vYmFy+/=-request"
    fields = form_fields(render(send_message_template, '{"a": 1}', connection_id=connection_id, request_id=request_id))
    assert message_attributes(fields) == {"connectionId": ("String", connection_id), "requestId": ("String", request_id)}


def test_the_form_has_exactly_the_sendmessage_fields(send_message_template, settings):
    fields = form_fields(render(send_message_template, '{"MessageGroupId": "g"}'))
    expected = {"Action", "MessageBody"} | {
        f"MessageAttribute.{n}.{part}" for n in (1, 2) for part in ("Name", "Value.DataType", "Value.StringValue")
    }
    if settings.fifo:
        expected |= {"MessageGroupId", "MessageDeduplicationId"}
    assert set(fields) == expected  # no stray whitespace-named field, no FIFO field on a standard queue


def test_fifo_group_is_the_connection_and_dedup_is_the_request_id(send_message_template, settings):
    fields = form_fields(render(send_message_template, '{"order": 42}', request_id="req-1="))
    fifo = {k: v for k, v in fields.items() if k in ("MessageGroupId", "MessageDeduplicationId")}
    assert fifo == ({"MessageGroupId": CONNECTION_ID, "MessageDeduplicationId": "req-1="} if settings.fifo else {})


@pytest.mark.parametrize(
    ("body", "group"),
    [
        ('{"MessageGroupId": "customer-42", "order": 1}', "customer-42"),
        ('  \n{"MessageGroupId": "a&b=c+d %é 🚀"}', "a&b=c+d %é 🚀"),
        ('{"MessageGroupId": ""}', CONNECTION_ID),
        ('{"order": {"MessageGroupId": "nested-does-not-count"}}', CONNECTION_ID),
        ('[{"MessageGroupId": "in-an-array"}]', CONNECTION_ID),
        ("MessageGroupId=plain-text", CONNECTION_ID),
    ],
    ids=["named", "named-with-form-syntax", "empty-name", "nested", "array", "not-json"],
)
def test_fifo_group_is_the_one_a_json_object_names(send_message_template, settings, body, group):
    fields = form_fields(render(send_message_template, body))
    assert fields.get("MessageGroupId") == (group if settings.fifo else None)
    assert fields["MessageBody"] == body


def test_fifo_frame_that_looks_like_an_object_but_is_not_json_is_refused(send_message_template, settings):
    # Only FIFO templates parse the frame (to find MessageGroupId); API Gateway refuses one it cannot parse.
    if settings.fifo:
        with pytest.raises(airspeed.TemplateExecutionError) as refused:
            render(send_message_template, '{"unterminated": ')
        assert isinstance(refused.value.__cause__, UnparsableBody)
    else:
        assert form_fields(render(send_message_template, '{"unterminated": '))["MessageBody"] == '{"unterminated": '


def test_sqs_takes_the_fifo_fields_exactly_when_the_queue_is_fifo(send_message_template, settings, local_sqs):
    sqs, url = local_sqs
    post_like_api_gateway(url, render(send_message_template, '{"MessageGroupId": "customer-42"}', request_id="r-1"))
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert message["Attributes"].get("MessageGroupId") == ("customer-42" if settings.fifo else None)
    assert message["Attributes"].get("MessageDeduplicationId") == ("r-1" if settings.fifo else None)
    assert message["MessageAttributes"]["requestId"] == {"DataType": "String", "StringValue": "r-1"}
