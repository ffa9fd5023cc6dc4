"""Contract of the WebSocket SQS integration ($default and the named routes): the request template *as synthesized*
delivers each frame byte for byte, with the route it took.

The template is read from the synthesized CloudFormation template (not from the .vtl file), rendered with the
stand-ins for API Gateway in vtl.py, and the form it produces is decoded the way SQS decodes a query request: with
urllib.parse, and by a local SQS (moto server) that receives the very bytes API Gateway would POST. Route selection
(API Gateway's, on the frame's `action` field) is played by `make local`'s WebSocket API.
"""

from __future__ import annotations

import json
import time
import uuid

import airspeed
import pytest

import vtl
from conftest import ROUTE, LocalQueues, Synthesized
from local.assembly import Assembly
from local.websocket_api import WebSocketApi, sqs_integrations

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


def render(
    template: str, body: str, *, connection_id: str = CONNECTION_ID, request_id: str = "", route_key: str = "$default"
) -> str:
    context = vtl.websocket_context(connection_id, request_id or str(uuid.uuid4())) | {"routeKey": route_key}
    return vtl.render(template, body, context=context)


def post_like_api_gateway(integration: dict, queue, rendered: str) -> dict:
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
def test_sqs_stores_the_frame_body_byte_for_byte(integration, send_message_template, local_queues, body):
    message = post_like_api_gateway(integration, local_queues, render(send_message_template, body))
    assert message["Body"].encode("utf-8") == body.encode("utf-8")
    assert message["MessageAttributes"]["connectionId"] == {"DataType": "String", "StringValue": CONNECTION_ID}


@pytest.mark.parametrize("connection_id", [CONNECTION_ID, "a+b/c==", "plain123"])
def test_the_connection_id_request_id_and_route_key_travel_as_string_attributes(send_message_template, connection_id):
    request_id = "Zm9vYmFy+/=-request"
    rendered = render(send_message_template, '{"a": 1}', connection_id=connection_id, request_id=request_id)
    fields = vtl.form_fields(rendered)
    assert vtl.message_attributes(fields) == {
        "connectionId": ("String", connection_id),
        "requestId": ("String", request_id),
        "routeKey": ("String", "$default"),
    }


def test_the_form_has_exactly_the_sendmessage_fields(send_message_template, expected):
    fields = vtl.form_fields(render(send_message_template, '{"MessageGroupId": "g"}'))
    wanted = {"Action", "MessageBody"} | {
        f"MessageAttribute.{n}.{part}" for n in (1, 2, 3) for part in ("Name", "Value.DataType", "Value.StringValue")
    }
    if expected.fifo:
        wanted |= {"MessageGroupId", "MessageDeduplicationId"}
    assert set(fields) == wanted  # no stray whitespace-named field, no FIFO field on a standard queue


def test_fifo_group_is_the_connection_and_dedup_is_the_request_id(send_message_template, expected):
    fields = vtl.form_fields(render(send_message_template, '{"order": 42}', request_id="req-1="))
    fifo = {k: v for k, v in fields.items() if k in ("MessageGroupId", "MessageDeduplicationId")}
    assert fifo == ({"MessageGroupId": CONNECTION_ID, "MessageDeduplicationId": "req-1="} if expected.fifo else {})


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
def test_fifo_group_is_the_one_a_json_object_names(send_message_template, expected, body, group):
    fields = vtl.form_fields(render(send_message_template, body))
    assert fields.get("MessageGroupId") == (group if expected.fifo else None)
    assert fields["MessageBody"] == body


def test_fifo_frame_that_looks_like_an_object_but_is_not_json_is_refused(send_message_template, expected):
    # Only FIFO templates parse the frame (to find MessageGroupId); API Gateway refuses one it cannot parse.
    if expected.fifo:
        with pytest.raises(airspeed.TemplateExecutionError) as refused:
            render(send_message_template, '{"unterminated": ')
        assert isinstance(refused.value.__cause__, vtl.UnparsableBody)
    else:
        assert vtl.form_fields(render(send_message_template, '{"unterminated": '))["MessageBody"] == '{"unterminated": '


def test_sqs_takes_the_fifo_fields_exactly_when_the_queue_is_fifo(
    integration, send_message_template, expected, local_queues
):
    rendered = render(send_message_template, '{"MessageGroupId": "customer-42"}', request_id="r-1")
    message = post_like_api_gateway(integration, local_queues, rendered)
    assert message["Attributes"].get("MessageGroupId") == ("customer-42" if expected.fifo else None)
    assert message["Attributes"].get("MessageDeduplicationId") == ("r-1" if expected.fifo else None)
    assert message["MessageAttributes"]["requestId"] == {"DataType": "String", "StringValue": "r-1"}


# --- a group id SQS refuses -------------------------------------------------------------------------------------

# SQS takes 1-128 letters, digits and punctuation as a group id (SendMessage reference); a frame may name any.
REFUSED_GROUP_IDS = {"non-ascii": "café", "space": "customer 42", "too-long": "g" * 129}


@pytest.mark.parametrize("group", REFUSED_GROUP_IDS.values(), ids=REFUSED_GROUP_IDS.keys())
def test_a_group_id_sqs_refuses_is_not_queued(integration, send_message_template, expected, local_queues, group):
    rendered = render(send_message_template, json.dumps({"MessageGroupId": group}))
    answer = local_queues.post(rendered, vtl.integration_headers(integration["RequestParameters"]))
    if expected.fifo:
        assert answer.status == 400 and "MessageGroupId" in answer.body
        assert local_queues.messages() == []
    else:  # a standard queue has no groups: the template sends none, and the frame is queued
        assert answer.status == 200
        assert len(local_queues.messages()) == 1


def test_the_client_gets_an_error_frame_for_a_frame_sqs_refuses_and_nothing_is_processed(pipeline, expected):
    frame = json.dumps({"MessageGroupId": "café", "id": str(uuid.uuid4())})
    pipeline.api.send(frame, group="refused-group")
    if expected.fifo:
        deadline = time.monotonic() + 10
        while not (errors := [json.loads(f) for f in pipeline.api.frames() if "Internal server error" in f]):
            assert time.monotonic() < deadline, "no error frame"
            time.sleep(0.05)
        assert set(errors[-1]) == {"message", "connectionId", "requestId"}
        time.sleep(1)
        assert not [d for d in pipeline.poller.deliveries if d.body == frame]
    else:
        deadline = time.monotonic() + 30
        while not any(d.body == frame and d.deleted for d in pipeline.poller.deliveries):
            assert time.monotonic() < deadline, "the frame was not processed"
            time.sleep(0.05)


# --- named routes (settings.websocket_routes) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def routed(with_options: Synthesized) -> Synthesized:
    """The stack with the named route ROUTE (conftest's `with_options`)."""
    return with_options


@pytest.fixture(scope="module")
def routed_api(routed, local_sqs_server):
    """`make local`'s WebSocket API for that stack, in front of the contract tests' SQS (`local_queues`)."""
    api = WebSocketApi(Assembly(routed.json, routed.template_path), local_sqs_server, 0)
    yield api
    api.stop()


def queued(queues: LocalQueues, api: WebSocketApi) -> dict:
    """The one message a frame just sent became."""
    deadline = time.monotonic() + 10
    while not (messages := queues.messages()):
        assert time.monotonic() < deadline, f"nothing queued; the client received {api.frames()}"
        time.sleep(0.05)
    [message] = messages
    return message


@pytest.mark.parametrize("route_key", [ROUTE, "$default"])
def test_sqs_stores_the_route_key_of_each_route_as_a_string_attribute(routed, local_queues, route_key):
    integration = sqs_integrations(Assembly(routed.json, routed.template_path))[route_key]
    rendered = render(integration.template, '{"order_id": 42}', route_key=route_key)
    _, message = local_queues.send(rendered, integration.headers)
    assert message["MessageAttributes"]["routeKey"] == {"DataType": "String", "StringValue": route_key}


def test_a_frame_whose_action_names_a_route_reaches_the_queue_with_that_route_key(routed_api, local_queues):
    frame = json.dumps({"action": ROUTE, "order_id": 42})
    routed_api.send(frame)
    message = queued(local_queues, routed_api)
    assert message["Body"] == frame
    assert message["MessageAttributes"]["routeKey"] == {"DataType": "String", "StringValue": ROUTE}


NO_ROUTE_FRAMES = {
    "unknown-action": '{"action": "refunds", "order_id": 42}',
    "no-action": '{"order_id": 42}',
    "action-not-a-string": '{"action": ["orders"]}',
    "json-array": '[{"action": "orders"}]',
    "not-json": "orders",
}


@pytest.mark.parametrize("frame", NO_ROUTE_FRAMES.values(), ids=NO_ROUTE_FRAMES.keys())
def test_a_frame_that_names_no_route_goes_through_default(routed_api, local_queues, frame):
    routed_api.send(frame)
    message = queued(local_queues, routed_api)
    assert message["Body"] == frame
    assert message["MessageAttributes"]["routeKey"] == {"DataType": "String", "StringValue": "$default"}
