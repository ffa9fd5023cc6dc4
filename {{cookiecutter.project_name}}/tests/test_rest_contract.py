"""Contract of the REST API integration: the VTL templates *as synthesized* deliver the body byte for byte.

The templates are read from the synthesized template and rendered with the stand-ins for API Gateway in vtl.py.
The request form is decoded the way SQS decodes it, and also posted (signed, with the integration's own headers) to
a local SQS. The response templates are rendered against SQS's answers: a recorded SendMessage answer for 202, and
SQS errors (one produced by the local SQS) for 400, 500 and 502. The body model (schemas/message.json) is checked
with jsonschema's draft 4 validator, and requests go through the whole method as `make local` serves it: a body the
model refuses gets the synthesized 400 gateway response, and nothing reaches the queue.
"""

from __future__ import annotations

import copy
import json
import uuid

import jsonschema
import pytest

import schema
import vtl
from local.assembly import Assembly
from local.rest_api import RestApi, gateway_response
from local.soak import unthrottled

GROUP_ID = "customer-42&x=1"  # form syntax in the header value too
HEADERS = {"X-Message-Group-Id": GROUP_ID}
BODIES = vtl.JSON_OBJECT_BODIES  # the model admits JSON objects only

# What SQS answers API Gateway's SendMessage (a query request, form-encoded) when asked for `Accept:
# application/json`, as recorded in the responses of deployed API Gateway -> SQS integrations: the XML answer's
# structure in JSON, with null for the fields a standard queue and a message without attributes leave out.
RECORDED_SEND_MESSAGE_ANSWER = (
    '{"SendMessageResponse":{"ResponseMetadata":{"RequestId":"2e75dac6-4f87-52ab-8fa4-8615640b84f4"},'
    '"SendMessageResult":{"MD5OfMessageAttributes":null,"MD5OfMessageBody":"0d7ac2dec5f281678f65dcf7fe4681ba",'
    '"MD5OfMessageSystemAttributes":null,"MessageId":"9d72cd66-5aaf-4c0f-8f03-8fc96b7a45e1","SequenceNumber":null}}}'
)
RECORDED_MESSAGE_ID = "9d72cd66-5aaf-4c0f-8f03-8fc96b7a45e1"

# SQS errors as API Gateway receives them. In JSON (what `Accept: application/json` asks for) and in XML (SQS's
# query answer), so that the templates do not depend on which one arrives. Each names the account and queue.
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:secret-queue"


def sqs_error_json(code: str, message: str) -> str:
    error = {"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": "a1b2c3d4-sqs"}
    return json.dumps(error)


def sqs_error_xml(code: str, message: str) -> str:
    return (
        '<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message><Detail/></Error>"
        "<RequestId>a1b2c3d4-sqs</RequestId></ErrorResponse>"
    )


TOO_LARGE = (
    "InvalidParameterValue",
    "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.",
)
BAD_GROUP_ID = (
    "InvalidParameterValue",
    "Value é for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and "
    "punctuation characters. 1 to 128 in length.",
)
BAD_CHARACTERS = ("InvalidMessageContents", "Invalid binary character '#xFFFE' was found in the message body.")
KMS_DENIED = (
    "KMS.AccessDeniedException",
    "User: arn:aws:sts::123456789012:assumed-role/send-role is not authorized to perform: kms:GenerateDataKey on "
    f"resource: {QUEUE_ARN}",
)
ACCESS_DENIED = ("AccessDenied", f"Access to the resource {QUEUE_ARN} is denied.")
INTERNAL_ERROR = ("InternalError", f"We encountered an internal error for {QUEUE_ARN}. Please try again.")


# --- The templates, as synthesized ------------------------------------------------------------------------------------


def integration(synthesized) -> dict:
    return synthesized.only("AWS::ApiGateway::Method")["Integration"]


def request_template(synthesized) -> str:
    return integration(synthesized)["RequestTemplates"]["application/json"]


def response_template(synthesized, status: str) -> str:
    [response] = [r for r in integration(synthesized)["IntegrationResponses"] if r["StatusCode"] == status]
    return response["ResponseTemplates"]["application/json"]


def form(synthesized, body: str, request_id: str = "req-1") -> str:
    return vtl.render(request_template(synthesized), body, context=vtl.rest_context(request_id), headers=HEADERS)


def client_answer(synthesized, status: str, sqs_answer: str, request_id: str = "req-1") -> tuple[str, dict]:
    """What the client gets when the integration response `status` renders SQS's answer: (status, JSON body)."""
    context = vtl.rest_context(request_id)
    body = vtl.render(response_template(synthesized, status), sqs_answer, context=context)
    return str(context["responseOverride"].get("status", status)), json.loads(body)


def send_through_api(synthesized, queue, body: str):
    headers = vtl.integration_headers(integration(synthesized)["RequestParameters"])
    return queue.send(form(synthesized, body), headers)


# --- Request ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_form_decodes_to_the_request_body_byte_for_byte(synthesized, body):
    assert vtl.form_fields(form(synthesized, body))["MessageBody"].encode("utf-8") == body.encode("utf-8")


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_form_is_one_line_of_ascii(synthesized, body):
    assert vtl.is_one_line_of_ascii(form(synthesized, body))


def test_the_form_asks_sqs_for_sendmessage_with_fifo_fields_exactly_when_fifo(synthesized, expected):
    fields = vtl.form_fields(form(synthesized, '{"order": 1}', request_id="5f0c9d4e-request"))
    wanted = {"Action": "SendMessage", "MessageBody": '{"order": 1}'}
    if expected.fifo:
        wanted |= {"MessageGroupId": GROUP_ID, "MessageDeduplicationId": "5f0c9d4e-request"}
    assert fields == wanted


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_sqs_stores_the_request_body_byte_for_byte(synthesized, local_queues, body):
    _, message = send_through_api(synthesized, local_queues, body)
    assert message["Body"].encode("utf-8") == body.encode("utf-8")


def test_sqs_takes_the_fifo_fields_exactly_when_the_queue_is_fifo(synthesized, expected, local_queues):
    _, message = send_through_api(synthesized, local_queues, "{}")
    assert message["Attributes"].get("MessageGroupId") == (GROUP_ID if expected.fifo else None)
    assert message["Attributes"].get("MessageDeduplicationId") == ("req-1" if expected.fifo else None)


# --- Response: 202 ----------------------------------------------------------------------------------------------------


def test_202_body_is_json_naming_the_message_id_sqs_assigned(synthesized):
    status, answer = client_answer(synthesized, "202", RECORDED_SEND_MESSAGE_ANSWER)
    assert (status, answer) == ("202", {"messageId": RECORDED_MESSAGE_ID})


# --- Response: errors -------------------------------------------------------------------------------------------------


def assert_clean(answer: dict, request_id: str, sqs_answer: str) -> None:
    """A short JSON answer with the request id to quote, and nothing of SQS's own error."""
    assert set(answer) == {"message", "requestId"}
    assert answer["requestId"] == request_id
    text = json.dumps(answer)
    for leak in ("123456789012", "secret-queue", "a1b2c3d4-sqs", "Error", "Exception", "xmlns", "Reason"):
        assert leak not in text, (leak, sqs_answer)


@pytest.mark.parametrize("shape", [sqs_error_json, sqs_error_xml], ids=["json", "xml"])
@pytest.mark.parametrize("error", [TOO_LARGE, BAD_GROUP_ID, BAD_CHARACTERS], ids=["too-large", "group-id", "chars"])
def test_a_message_sqs_refuses_is_the_clients_400(synthesized, expected, shape, error):
    request_id = str(uuid.uuid4())
    status, answer = client_answer(synthesized, "400", shape(*error), request_id)
    assert status == "400"
    assert_clean(answer, request_id, shape(*error))
    assert answer["message"].startswith("The queue refused the message: it is larger than the queue accepts")
    assert ("X-Message-Group-Id" in answer["message"]) is expected.fifo


def test_a_body_larger_than_the_local_queues_accepts_is_the_clients_400(synthesized, local_queues):
    body = json.dumps({"blob": "x" * 1_048_576})  # API Gateway takes up to 10 MB; SQS up to 1 MiB
    headers = vtl.integration_headers(integration(synthesized)["RequestParameters"])
    sqs_answer = local_queues.post(form(synthesized, body), headers)
    assert sqs_answer.status == 400 and local_queues.messages() == []
    status, answer = client_answer(synthesized, "400", sqs_answer.body, request_id="req-large")
    assert status == "400"
    assert_clean(answer, "req-large", sqs_answer.body)


@pytest.mark.parametrize("shape", [sqs_error_json, sqs_error_xml], ids=["json", "xml"])
def test_sqs_400s_that_are_our_fault_answer_500_like_other_4xx(synthesized, shape):
    # A KMS error comes as 400 too; it is a key policy problem of this stack, not the client's.
    request_id = str(uuid.uuid4())
    status, answer = client_answer(synthesized, "400", shape(*KMS_DENIED), request_id)
    _, other_4xx = client_answer(synthesized, "500", shape(*ACCESS_DENIED), request_id)
    assert status == "500"
    assert answer == other_4xx
    assert_clean(answer, request_id, shape(*KMS_DENIED))


@pytest.mark.parametrize("shape", [sqs_error_json, sqs_error_xml], ids=["json", "xml"])
@pytest.mark.parametrize(("status", "error"), [("500", ACCESS_DENIED), ("502", INTERNAL_ERROR)], ids=["4xx", "5xx"])
def test_other_sqs_errors_reach_the_client_as_short_json_without_sqs_details(synthesized, shape, status, error):
    request_id = str(uuid.uuid4())
    client_status, answer = client_answer(synthesized, status, shape(*error), request_id)
    assert client_status == status
    assert_clean(answer, request_id, shape(*error))
    assert "quote the requestId" in answer["message"]


# --- Validation -------------------------------------------------------------------------------------------------------


def message_schema(synthesized) -> dict:
    return synthesized.only("AWS::ApiGateway::Model")["Schema"]


def validator(synthesized) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(message_schema(synthesized))  # the draft API Gateway models use


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        '{"order": 1}',
        '{"nested": {"list": [1, "two", null]}}',
        '{"idempotency_key": "order-42", "reject": false}',
        *BODIES.values(),
    ],
    ids=["empty", "flat", "nested", "sample-fields", *BODIES.keys()],
)
def test_the_model_accepts_the_sample_messages(synthesized, body):
    validator(synthesized).validate(json.loads(body))


@pytest.mark.parametrize("body", ['[{"order": 1}]', '"a string"', "42", "4.2", "null", "true"])
def test_the_model_refuses_json_that_is_not_an_object(synthesized, body):
    with pytest.raises(jsonschema.ValidationError):
        validator(synthesized).validate(json.loads(body))


@pytest.mark.parametrize(
    "body", ['{"idempotency_key": 5}', '{"idempotency_key": ""}', '{"reject": "yes"}'], ids=["number", "empty", "str"]
)
def test_the_model_refuses_fields_of_the_wrong_type_or_size(synthesized, body):
    with pytest.raises(jsonschema.ValidationError):
        validator(synthesized).validate(json.loads(body))


def test_the_400_template_stays_json_with_api_gateways_own_wording(synthesized):
    # API Gateway's validationErrorString quotes property names; the template keeps it inside a JSON string.
    [response] = synthesized.resources("AWS::ApiGateway::GatewayResponse").values()
    aws_wording = '[object has missing required properties (["id"])]'
    status, body, _ = gateway_response(response["Properties"], 400, "Invalid request body", aws_wording, "req-1")
    assert (status, json.loads(body)) == (
        400,
        {"message": "Invalid request body", "validationErrors": aws_wording, "requestId": "req-1"},
    )


# --- The method as `make local` serves it: validation, then the integration ------------------------------------------


@pytest.fixture
def rest_api(synthesized, local_queues):
    """The synthesized method on a free port, sending to this test's empty queues in the local SQS."""
    api = RestApi(Assembly(synthesized.json, synthesized.template_path), local_queues.sqs, port=0, log=print)
    with unthrottled(api):  # the stage throttle is not what these tests are about
        yield api
    api.stop()


REFUSED_BODIES = {
    "array": ("[1, 2]", "is not of type 'object'"),
    "wrong-type": ('{"idempotency_key": 5}', "/idempotency_key"),
    "too-short": ('{"idempotency_key": ""}', "/idempotency_key"),
    "not-json": ("order=42", "Invalid JSON"),
}


@pytest.mark.parametrize(("body", "named"), REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_a_body_the_schema_refuses_gets_400_naming_the_problem_and_queues_nothing(rest_api, local_queues, body, named):
    answer = rest_api.send(body, group="customer-42")
    assert answer.status == 400, answer.body
    refusal = json.loads(answer.body)
    assert refusal["message"] == "Invalid request body"
    assert refusal["validationErrors"].startswith("[") and named in refusal["validationErrors"]
    assert str(uuid.UUID(refusal["requestId"])) == refusal["requestId"]
    assert local_queues.messages() == []


def test_a_body_the_schema_accepts_still_gets_202_and_is_queued_as_sent(rest_api, local_queues):
    body = '{"idempotency_key": "order-42", "reject": false, "extra": ["kept"]}'
    answer = rest_api.send(body, group="customer-42")
    assert answer.status == 202, answer.body
    [message] = local_queues.messages()
    assert json.loads(answer.body) == {"messageId": message["MessageId"]}
    assert message["Body"] == body


def test_a_body_failing_only_a_format_is_queued_and_the_worker_admits_it_too(synthesized, local_queues):
    """API Gateway's draft 4 check does not enforce `format`; the worker (worker/schema.py) must not either, or a
    body the API answered 202 would be dead-lettered for the schema."""
    template = copy.deepcopy(synthesized.json)
    model = template["Resources"][synthesized.only_id("AWS::ApiGateway::Model")]["Properties"]["Schema"]
    model["properties"] |= {
        "email": {"type": "string", "format": "email"},
        "sent_at": {"type": "string", "format": "date-time"},
    }
    api = RestApi(Assembly(template, synthesized.template_path), local_queues.sqs, port=0, log=print)
    try:
        with unthrottled(api):
            body = '{"email": "not an address", "sent_at": "yesterday"}'
            answer = api.send(body, group="customer-42")
    finally:
        api.stop()
    assert answer.status == 202, answer.body
    [message] = local_queues.messages()
    assert message["Body"] == body
    assert schema.validator(model)(json.loads(message["Body"])) == json.loads(body)


@pytest.mark.parametrize("character", ["\ufffe", "\uffff"], ids=["U+FFFE", "U+FFFF"])
def test_a_json_body_with_a_character_sqs_refuses_is_the_clients_400_and_queues_nothing(
    rest_api, local_queues, character
):
    # Valid JSON (only control characters must be escaped in a JSON string), so the model admits it; SQS's
    # SendMessage reference says it refuses such a body with InvalidMessageContents: mapping/rest_refused.vtl's 400.
    answer = rest_api.send(json.dumps({"note": f"a{character}b"}, ensure_ascii=False), group="customer-42")
    assert answer.status == 400, answer.body
    assert json.loads(answer.body)["message"].startswith("The queue refused the message:")
    assert "characters SQS does not accept" in json.loads(answer.body)["message"]
    assert local_queues.messages() == []
