"""Contract of the REST API integration: the VTL templates *as synthesized* deliver the body byte for byte.

The templates are read from the synthesized template and rendered with airspeed against Python stand-ins for
API Gateway's `$input`, `$util` and `$context`. The request form is decoded the way SQS decodes it, and also posted
(signed, as the integration role would sign it) to a local SQS (moto), whose answer feeds the response template.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, quote_plus

import airspeed
import boto3
import jsonschema
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws

REGION = "eu-west-1"
GROUP_ID = "customer-42&x=1"  # form syntax in the header value too
NASTY_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20", "plus": "+", "pct": "100%"}',
    "url-reserved": '{"u": "https://x.test/a?b=c&d=e#f~g*h;i,j:k@l$m!n(o)p/q"}',
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp\\\\", "single": "it\'s"}',
    "json-escapes": '{"text": "line 1\\nline 2\\tTabbed \\u00e9 \\ud83d\\ude80"}',
    "raw-newlines-and-tabs": '{\n\t"pretty": true,\r\n\t"list": [1, 2]\n}\n',
    "non-ascii": '{"name": "Zoë Ñandú 漢字 🚀🎉", "rtl": "שלום"}',
    "velocity-syntax": '{"vtl": "$input.body #set($x = 1) ## not a comment ${x}"}',
    "large-200kb": json.dumps({"blob": "x&=+%é" * 34000}),
}


# --- API Gateway's mapping-template variables, in Python -----------------------------------------------------------


def java_url_encode(text: str) -> str:
    """Java's URLEncoder.encode(text, UTF-8), which is $util.urlEncode: keeps A-Z a-z 0-9 . - * _, space -> '+'."""
    return quote_plus(text, safe="*").replace("~", "%7E")  # Python keeps '~'; Java encodes it


def json_path(document: Any, path: str) -> Any:
    """The subset of JSONPath the templates use: `$` and `$.a.b`."""
    assert path == "$" or path.startswith("$."), f"JSONPath this contract test does not know: {path}"
    for key in path.split(".")[1:]:
        document = document[key]
    return document


class Input:
    """$input: the raw body, JSONPath over it, and the request parameters."""

    def __init__(self, body: str, headers: dict[str, str]) -> None:
        self.body = body
        self._headers = headers

    def json(self, path: str) -> str:
        return json.dumps(json_path(json.loads(self.body), path))

    def path(self, path: str) -> Any:
        return json_path(json.loads(self.body), path)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return {"path": {}, "querystring": {}, "header": self._headers}
        # path, then query string, then header (this API has neither of the first two); header names are
        # case-insensitive in HTTP
        return next((value for key, value in self._headers.items() if key.lower() == name.lower()), "")


class Util:
    """$util: the functions the templates may call."""

    def urlEncode(self, text: str) -> str:  # noqa: N802 (VTL names)
        return java_url_encode(text)

    def escapeJavaScript(self, text: str) -> str:  # noqa: N802
        # As Java's StringEscapeUtils.escapeJavaScript: JSON string escapes, plus \' and \/
        return json.dumps(text)[1:-1].replace("'", "\\'").replace("/", "\\/")

    def parseJson(self, text: str) -> Any:  # noqa: N802
        return json.loads(text)


def render(template: str, *, body: str, headers: dict[str, str] | None = None, request_id: str = "req-1") -> str:
    context = {"requestId": request_id, "stage": "test", "httpMethod": "POST", "resourcePath": "/messages"}
    return airspeed.Template(template).merge({"input": Input(body, headers or {}), "util": Util(), "context": context})


# --- The templates, as synthesized ------------------------------------------------------------------------------------


def integration(synthesized) -> dict:
    return synthesized.only("AWS::ApiGateway::Method")["Integration"]


def request_template(synthesized) -> str:
    return integration(synthesized)["RequestTemplates"]["application/json"]


def response_template(synthesized, status: str) -> str:
    [response] = [r for r in integration(synthesized)["IntegrationResponses"] if r["StatusCode"] == status]
    return response["ResponseTemplates"]["application/json"]


def form_of(synthesized, body: str, request_id: str = "req-1") -> dict[str, list[str]]:
    """What SQS reads from the form the request template writes."""
    headers = {"X-Message-Group-Id": GROUP_ID}
    form = render(request_template(synthesized), body=body, headers=headers, request_id=request_id)
    return parse_qs(form, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")


# --- A local SQS, called the way API Gateway calls it ---------------------------------------------------------------


@pytest.fixture
def local_queue(settings):
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        attributes = {"FifoQueue": "true"} if settings.fifo else {}
        yield sqs, sqs.create_queue(QueueName=settings.queue_name, Attributes=attributes)["QueueUrl"]


def post_form(synthesized, queue_url: str, form: str) -> requests.Response:
    """POST the rendered form with the integration's own headers, signed as the integration role signs it."""
    headers = {
        name.removeprefix("integration.request.header."): value.strip("'")
        for name, value in integration(synthesized)["RequestParameters"].items()
    }
    request = AWSRequest("POST", queue_url, data=form.encode("ascii"), headers=headers)
    SigV4Auth(Credentials("testing", "testing"), "sqs", REGION).add_auth(request)
    return requests.post(queue_url, data=request.body, headers=dict(request.headers), timeout=10)


def as_sqs_json(xml_answer: str) -> dict:
    """A query-API answer in the JSON form SQS sends when asked for application/json (moto answers in XML)."""

    def convert(element: ET.Element) -> Any:
        children = list(element)
        return {child.tag.split("}")[-1]: convert(child) for child in children} if children else element.text

    root = ET.fromstring(xml_answer)
    return {root.tag.split("}")[-1]: convert(root)}


def send_through_api(synthesized, sqs, queue_url: str, body: str) -> tuple[requests.Response, dict]:
    form = render(request_template(synthesized), body=body, headers={"X-Message-Group-Id": GROUP_ID})
    answer = post_form(synthesized, queue_url, form)
    [message] = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"]
    return answer, message


# --- Request ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_the_form_decodes_to_the_request_body_byte_for_byte(synthesized, body):
    assert form_of(synthesized, body)["MessageBody"] == [body]


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_the_form_is_one_line_of_ascii(synthesized, body):
    # A newline or space in the form would become part of a value; SQS wants the form percent-encoded.
    form = render(request_template(synthesized), body=body, headers={"X-Message-Group-Id": GROUP_ID})
    assert form.isascii() and form.isprintable() and " " not in form


def test_the_form_asks_sqs_for_sendmessage_with_fifo_fields_exactly_when_fifo(synthesized, settings):
    form = form_of(synthesized, '{"order": 1}', request_id="5f0c9d4e-request")
    expected = {"Action": ["SendMessage"], "MessageBody": ['{"order": 1}']}
    if settings.fifo:
        expected |= {"MessageGroupId": [GROUP_ID], "MessageDeduplicationId": ["5f0c9d4e-request"]}
    assert form == expected


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_sqs_stores_the_request_body_byte_for_byte(synthesized, local_queue, body):
    sqs, url = local_queue
    answer, message = send_through_api(synthesized, sqs, url, body)
    assert answer.status_code == 200, answer.text
    assert message["Body"].encode("utf-8") == body.encode("utf-8")


def test_fifo_messages_take_their_group_from_the_header(synthesized, settings, local_queue):
    sqs, url = local_queue
    _, message = send_through_api(synthesized, sqs, url, "{}")
    assert message["Attributes"].get("MessageGroupId") == (GROUP_ID if settings.fifo else None)


# --- Response ---------------------------------------------------------------------------------------------------------


def test_202_body_names_the_message_id_sqs_assigned(synthesized, local_queue):
    sqs, url = local_queue
    answer, message = send_through_api(synthesized, sqs, url, '{"order": 1}')
    sqs_json = json.dumps(as_sqs_json(answer.text))
    client_body = render(response_template(synthesized, "202"), body=sqs_json)
    assert json.loads(client_body) == {"messageId": message["MessageId"]}


@pytest.mark.parametrize("status", ["500", "502"])
def test_sqs_errors_reach_the_client_as_short_json_without_sqs_details(synthesized, status):
    sqs_error = (
        '<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type>'
        "<Code>AccessDenied</Code><Message>Access to the resource arn:aws:sqs:eu-west-1:123456789012:q is denied."
        "</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
    request_id = str(uuid.uuid4())
    client_body = render(response_template(synthesized, status), body=sqs_error, request_id=request_id)
    answer = json.loads(client_body)
    assert set(answer) == {"message", "requestId"}
    assert answer["requestId"] == request_id
    assert "123456789012" not in client_body and "AccessDenied" not in client_body


# --- Validation -------------------------------------------------------------------------------------------------------


def message_schema(synthesized) -> dict:
    return synthesized.only("AWS::ApiGateway::Model")["Schema"]


@pytest.mark.parametrize("body", ['{}', '{"order": 1}', '{"nested": {"list": [1, "two", null]}}'])
def test_the_model_accepts_any_json_object(synthesized, body):
    jsonschema.validate(json.loads(body), message_schema(synthesized))


@pytest.mark.parametrize("body", ['[{"order": 1}]', '"a string"', "42", "4.2", "null", "true"])
def test_the_model_refuses_json_that_is_not_an_object(synthesized, body):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(body), message_schema(synthesized))
