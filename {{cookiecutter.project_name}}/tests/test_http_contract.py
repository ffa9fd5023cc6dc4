"""Contract of the HTTP API integration: the parameter mapping *as synthesized* delivers the body byte for byte.

The mapping is read from the synthesized template, evaluated the way API Gateway evaluates HTTP API parameter
mappings ($request.body, $request.header.*, $context.*), and sent with SendMessage to a local SQS (moto).
HTTP APIs apply no template, so what this proves is the choice of expressions: the whole body (not the CDK
default `$request.body.MessageBody`, which `evaluate` refuses), the group header and request id for FIFO, and
that SQS keeps such bodies intact.
"""

from __future__ import annotations

import json
import re
import uuid

import boto3
import pytest
from moto import mock_aws

NASTY_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20"}',
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp", "single": "it\'s"}',
    "newlines-and-tabs": '{"text": "line 1\\nline 2\\tTabbed"}\n',
    "raw-control-whitespace": '{\n\t"pretty": true\r\n}',
    "non-ascii": '{"name": "Zoë Ñandú 漢字 🚀🎉"}',
    "not-json-at-all": "plain text & more = 100% + love",
    "large-200kb": json.dumps({"blob": "x&=+%é" * 34000}),
}


def evaluate(expression: str, *, body: str, headers: dict[str, str], request_id: str, queue_url: str) -> str:
    """One HTTP API mapping value, the way API Gateway resolves it for this integration."""
    if isinstance(expression, dict):  # a CloudFormation Ref to the queue: its URL
        return queue_url
    if expression == "$request.body":
        return body
    if match := re.fullmatch(r"\$request\.header\.([\w-]+)", expression):
        return headers[match.group(1).lower()]
    if expression == "$context.requestId":
        return request_id
    raise AssertionError(f"mapping uses an expression this contract test does not know: {expression}")


@pytest.fixture
def local_queue(settings):
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        attributes = {"FifoQueue": "true"} if settings.fifo else {}
        url = sqs.create_queue(QueueName=settings.queue_name, Attributes=attributes)["QueueUrl"]
        yield sqs, url


def send_through_mapping(synthesized, sqs, url, body: str, headers: dict[str, str]) -> dict:
    mapping = synthesized.only("AWS::ApiGatewayV2::Integration")["RequestParameters"]
    request_id = str(uuid.uuid4())
    parameters = {
        name: evaluate(value, body=body, headers=headers, request_id=request_id, queue_url=url)
        for name, value in mapping.items()
    }
    sqs.send_message(**parameters)
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"]
    return message


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_the_message_body_is_the_request_body_byte_for_byte(synthesized, local_queue, body):
    sqs, url = local_queue
    message = send_through_mapping(synthesized, sqs, url, body, {"x-message-group-id": "customer-42"})
    assert message["Body"].encode() == body.encode()


def test_fifo_group_comes_from_the_header_exactly_when_the_queue_is_fifo(synthesized, settings, local_queue):
    sqs, url = local_queue
    message = send_through_mapping(synthesized, sqs, url, "{}", {"x-message-group-id": "customer-42"})
    assert message["Attributes"].get("MessageGroupId") == ("customer-42" if settings.fifo else None)


def test_a_request_without_the_group_header_is_not_queued_on_a_fifo_queue(synthesized, settings, local_queue):
    """HTTP APIs cannot require a header: on a FIFO queue the mapping has no value for MessageGroupId, the integration
    fails (a 5xx, docs/http-api.md) and nothing is queued; a standard queue's mapping does not read the header."""
    sqs, url = local_queue
    if settings.fifo:
        with pytest.raises(KeyError, match="x-message-group-id"):
            send_through_mapping(synthesized, sqs, url, "{}", {})
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    else:
        assert send_through_mapping(synthesized, sqs, url, "{}", {})["Body"] == "{}"
