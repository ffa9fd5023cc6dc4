"""Contract of the HTTP API integration: the parameter mapping *as synthesized* delivers the body byte for byte.

The mapping is read from the synthesized template, evaluated the way API Gateway evaluates HTTP API parameter
mappings ($request.body, $request.header.*, $context.*; local/http_api.py, as `make local` does), and sent with
SendMessage to the local SQS. HTTP APIs apply no template, so what this proves is the choice of expressions: the whole
body (not the CDK default `$request.body.MessageBody`, which `evaluate` refuses), the group header and request id
for FIFO, and that SQS keeps such bodies intact.
"""

from __future__ import annotations

import json
import uuid

import pytest

from local.http_api import MissingValue, evaluate

NASTY_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20"}',
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp", "single": "it\'s"}',
    "newlines-and-tabs": '{"text": "line 1\\nline 2\\tTabbed"}\n',
    "raw-control-whitespace": '{\n\t"pretty": true\r\n}',
    "non-ascii": '{"name": "Zoë Ñandú 漢字 🚀🎉"}',
    "not-json-at-all": "plain text & more = 100% + love",
    "large-200kb": json.dumps({"blob": "x&=+%é" * 34000}),
}


def send_through_mapping(synthesized, queues, body: str, headers: dict[str, str]) -> dict:
    """The request through the synthesized mapping (evaluated as `make local` evaluates it) into the local SQS."""
    mapping = synthesized.only("AWS::ApiGatewayV2::Integration")["RequestParameters"]
    request_id = str(uuid.uuid4())
    parameters = {
        name: evaluate(value, body=body, headers=headers, request_id=request_id, queue_url=queues.url)
        for name, value in mapping.items()
    }
    assert parameters.pop("QueueUrl") == queues.url
    answer = queues.sqs.send(queues.queue_name, parameters)
    assert answer.status == 200, answer.body
    [message] = queues.messages()
    return message


@pytest.mark.parametrize("body", NASTY_BODIES.values(), ids=NASTY_BODIES.keys())
def test_the_message_body_is_the_request_body_byte_for_byte(synthesized, local_queues, body):
    message = send_through_mapping(synthesized, local_queues, body, {"x-message-group-id": "customer-42"})
    assert message["Body"].encode() == body.encode()


def test_fifo_group_comes_from_the_header_exactly_when_the_queue_is_fifo(synthesized, expected, local_queues):
    message = send_through_mapping(synthesized, local_queues, "{}", {"x-message-group-id": "customer-42"})
    assert message["Attributes"].get("MessageGroupId") == ("customer-42" if expected.fifo else None)


def test_a_request_without_the_group_header_is_not_queued_on_a_fifo_queue(synthesized, expected, local_queues):
    """HTTP APIs cannot require a header: on a FIFO queue the mapping has no value for MessageGroupId, the integration
    fails (a 5xx, docs/http-api.md) and nothing is queued; a standard queue's mapping does not read the header."""
    if expected.fifo:
        with pytest.raises(MissingValue, match="x-message-group-id"):
            send_through_mapping(synthesized, local_queues, "{}", {})
        assert local_queues.messages() == []
    else:
        assert send_through_mapping(synthesized, local_queues, "{}", {})["Body"] == "{}"
