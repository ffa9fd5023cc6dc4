"""Contract of the WebSocket $default integration: the request template *as synthesized* delivers each frame
byte for byte.

The template is read from the synthesized CloudFormation template (not from the .vtl file), rendered with the
stand-ins for API Gateway in vtl.py, and the form it produces is decoded the way SQS decodes a query request: with
urllib.parse, and by a local SQS (moto server) that receives the very bytes API Gateway would POST.
"""

from __future__ import annotations

import uuid

import airspeed
import pytest

import vtl

CONNECTION_ID = "L0SM9cOFvHcCIhw="  # the shape API Gateway uses: base64, so it carries '=' (and may carry '+', '/')
BODIES = vtl.ANY_TEXT_BODIES  # a frame is any text


# --- the template as deployed, and what SQS makes of its output -------------------------------------------------


@pytest.fixture(scope="module")
def integration(synthesized) -> dict:
    [integration] = [
        i["Properties"]
        for i in synthesized.resources("AWS::ApiGatewayV2::Integration").values()
        if i["Properties"]["IntegrationType"] == "AWS"
    ]
    return integration


@pytest.fixture(scope="module")
def send_message_template(integration) -> str:
    return integration["RequestTemplates"]["$default"]


def render(template: str, body: str, *, connection_id: str = CONNECTION_ID, request_id: str = "") -> str:
    context = vtl.websocket_context(connection_id, request_id or str(uuid.uuid4()))
    return vtl.render(template, body, context=context)


@pytest.fixture
def local_sqs(settings):
    with vtl.local_sqs(settings.queue_name, fifo=settings.fifo) as queue:
        yield queue


def post_like_api_gateway(integration: dict, queue: vtl.LocalSqs, rendered: str) -> dict:
    """The integration request: POST to .../sqs:path/<account>/<queue> with the template output as the form body;
    returns the one message SQS stored."""
    _, message = queue.send(rendered, vtl.integration_headers(integration["RequestParameters"]))
    return message


# --- the contract -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_message_body_is_the_frame_body_byte_for_byte(send_message_template, body):
    fields = vtl.form_fields(render(send_message_template, body))
    assert fields["Action"] == "SendMessage"
    assert fields["MessageBody"].encode("utf-8") == body.encode("utf-8")


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_form_is_one_line_of_ascii(send_message_template, body):
    assert vtl.is_one_line_of_ascii(render(send_message_template, body))


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_sqs_stores_the_frame_body_byte_for_byte(integration, send_message_template, local_sqs, body):
    message = post_like_api_gateway(integration, local_sqs, render(send_message_template, body))
    assert message["Body"].encode("utf-8") == body.encode("utf-8")
    assert message["MessageAttributes"]["connectionId"] == {"DataType": "String", "StringValue": CONNECTION_ID}


@pytest.mark.parametrize("connection_id", [CONNECTION_ID, "a+b/c==", "plain123"])
def test_the_connection_and_request_ids_travel_as_string_attributes(send_message_template, connection_id):
    request_id = "Zm9vYmFy+/=-request"
    rendered = render(send_message_template, '{"a": 1}', connection_id=connection_id, request_id=request_id)
    fields = vtl.form_fields(rendered)
    assert vtl.message_attributes(fields) == {
        "connectionId": ("String", connection_id),
        "requestId": ("String", request_id),
    }


def test_the_form_has_exactly_the_sendmessage_fields(send_message_template, settings):
    fields = vtl.form_fields(render(send_message_template, '{"MessageGroupId": "g"}'))
    expected = {"Action", "MessageBody"} | {
        f"MessageAttribute.{n}.{part}" for n in (1, 2) for part in ("Name", "Value.DataType", "Value.StringValue")
    }
    if settings.fifo:
        expected |= {"MessageGroupId", "MessageDeduplicationId"}
    assert set(fields) == expected  # no stray whitespace-named field, no FIFO field on a standard queue


def test_fifo_group_is_the_connection_and_dedup_is_the_request_id(send_message_template, settings):
    fields = vtl.form_fields(render(send_message_template, '{"order": 42}', request_id="req-1="))
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
    fields = vtl.form_fields(render(send_message_template, body))
    assert fields.get("MessageGroupId") == (group if settings.fifo else None)
    assert fields["MessageBody"] == body


def test_fifo_frame_that_looks_like_an_object_but_is_not_json_is_refused(send_message_template, settings):
    # Only FIFO templates parse the frame (to find MessageGroupId); API Gateway refuses one it cannot parse.
    if settings.fifo:
        with pytest.raises(airspeed.TemplateExecutionError) as refused:
            render(send_message_template, '{"unterminated": ')
        assert isinstance(refused.value.__cause__, vtl.UnparsableBody)
    else:
        assert vtl.form_fields(render(send_message_template, '{"unterminated": '))["MessageBody"] == '{"unterminated": '


def test_sqs_takes_the_fifo_fields_exactly_when_the_queue_is_fifo(
    integration, send_message_template, settings, local_sqs
):
    rendered = render(send_message_template, '{"MessageGroupId": "customer-42"}', request_id="r-1")
    message = post_like_api_gateway(integration, local_sqs, rendered)
    assert message["Attributes"].get("MessageGroupId") == ("customer-42" if settings.fifo else None)
    assert message["Attributes"].get("MessageDeduplicationId") == ("r-1" if settings.fifo else None)
    assert message["MessageAttributes"]["requestId"] == {"DataType": "String", "StringValue": "r-1"}
