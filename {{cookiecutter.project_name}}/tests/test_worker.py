"""The worker handler, run as Lambda runs it: partial batch responses, one JSON log line per record, and messages
that can never succeed sent to the dead-letter queue (a moto queue here) at once, with the reason."""

from __future__ import annotations

import base64
import importlib
import io
import json
import sys
import uuid
from dataclasses import dataclass

import boto3
import jsonschema
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

import schema

FAILING = '{"fail": true}'  # the sample logic fails on it every time, as a bug would (worker/logic.py)


@dataclass
class FakeContext:
    function_name: str = "worker"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:worker"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def record(body: str, *, group: str | None = None, queue: str = "queue") -> dict:
    attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}
    if group is not None:
        attributes |= {"MessageGroupId": group, "MessageDeduplicationId": str(uuid.uuid4())}
        queue += ".fifo"
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{queue}",
        "awsRegion": "eu-west-1",
    }


def load_handler(monkeypatch: pytest.MonkeyPatch, queue_type: str, **environment: str):
    monkeypatch.setenv("QUEUE_TYPE", queue_type)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "worker-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "worker-tests")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    importlib.import_module("dead_letters").sqs_client.cache_clear()  # a client of the last test's moto
    importlib.import_module("results").sns_client.cache_clear()
    if "idempotency" in sys.modules:  # it reads its settings (key field, expiry) from the environment at import
        importlib.reload(sys.modules["idempotency"])
    return importlib.reload(importlib.import_module("handler"))


@pytest.fixture
def handler(monkeypatch, dlq_url):
    return load_handler(monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url)


@pytest.fixture
def fifo_handler(monkeypatch, fifo_dlq_url):
    return load_handler(monkeypatch, "fifo", DEAD_LETTER_QUEUE_URL=fifo_dlq_url)


def dead_letters(url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return answer.get("Messages", [])


def failed_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_batch_of_good_messages_reports_no_failure(handler):
    event = {"Records": [record(json.dumps({"order": n})) for n in range(3)]}
    assert handler.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}


def test_one_failing_message_fails_alone(handler, dlq_url):
    good, failing, also_good = record('{"a": 1}'), record(FAILING), record('{"b": 2}')
    response = handler.lambda_handler({"Records": [good, failing, also_good]}, FakeContext())
    assert failed_ids(response) == [failing["messageId"]]  # back to the queue: retried, dead-lettered by SQS
    assert dead_letters(dlq_url) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"unterminated": ', "RejectedMessage: not JSON: Expecting value: line 1 column 18 (char 17)"),
        ("[1, 2, 3]", "RejectedMessage: schema message.json: data must be object"),
        ('{"idempotency_key": 5}', "RejectedMessage: schema message.json: data.idempotency_key must be string"),
        ('{"reject": true}', "RejectedMessage: the message asked to be rejected"),
    ],
    ids=["not-json", "not-an-object", "against-the-schema", "rejected-by-the-logic"],
)
def test_a_message_that_can_never_succeed_goes_to_the_dlq_at_once_with_the_reason(handler, dlq_url, body, reason):
    rejected, good = record(body), record('{"ok": true}')
    rejected["messageAttributes"] = {"connectionId": {"stringValue": "c-1=", "dataType": "String"}}
    assert handler.lambda_handler({"Records": [rejected, good]}, FakeContext()) == {"batchItemFailures": []}
    [dead] = dead_letters(dlq_url)
    assert dead["Body"] == body
    assert dead["MessageAttributes"] == {
        "connectionId": {"StringValue": "c-1=", "DataType": "String"},  # the message's own attributes, kept
        "DeadLetterReason": {"StringValue": reason, "DataType": "String"},
    }


def test_the_dead_letter_copy_keeps_number_binary_and_custom_typed_attributes(handler, dlq_url):
    """Lambda hands binary values over in base64; SendMessage takes the bytes. Types (with a custom suffix) stay."""
    rejected = record('{"reject": true}')
    rejected["messageAttributes"] = {
        "priority": {"stringValue": "-1.5e3", "dataType": "Number"},
        "signature": {"binaryValue": base64.b64encode(b"\x00\xffsig").decode(), "dataType": "Binary"},
        "tenant": {"stringValue": "acme", "dataType": "String.tenant"},
        "image": {"binaryValue": base64.b64encode(b"\x89PNG").decode(), "dataType": "Binary.png"},
    }
    assert failed_ids(handler.lambda_handler({"Records": [rejected]}, FakeContext())) == []
    [dead] = dead_letters(dlq_url)
    assert dead["MessageAttributes"] == {
        "priority": {"StringValue": "-1.5e3", "DataType": "Number"},
        "signature": {"BinaryValue": b"\x00\xffsig", "DataType": "Binary"},
        "tenant": {"StringValue": "acme", "DataType": "String.tenant"},
        "image": {"BinaryValue": b"\x89PNG", "DataType": "Binary.png"},
        "DeadLetterReason": {"StringValue": "RejectedMessage: the message asked to be rejected", "DataType": "String"},
    }


# What API Gateway's draft 4 model check admits although a later draft, or a `format` check, would refuse it: the
# worker must admit it too (a body the REST API took is never dead-lettered for the schema), whatever `$schema` says.
GATEWAY_ADMITS = {
    "email-format": ({"properties": {"email": {"type": "string", "format": "email"}}}, {"email": "not an address"}),
    "date-time-format": ({"properties": {"at": {"type": "string", "format": "date-time"}}}, {"at": "yesterday"}),
    "later-draft-keyword": ({"properties": {"kind": {"const": "order"}}}, {"kind": "refund"}),
}
DECLARED = {"draft-4": schema.DRAFT_4, "draft-7": "http://json-schema.org/draft-07/schema#", "undeclared": None}


@pytest.mark.parametrize("declared", DECLARED.values(), ids=DECLARED.keys())
@pytest.mark.parametrize(("keywords", "message"), GATEWAY_ADMITS.values(), ids=GATEWAY_ADMITS.keys())
def test_the_worker_admits_what_the_gateways_draft_4_check_admits(declared, keywords, message):
    document = {"type": "object", **keywords} | ({"$schema": declared} if declared else {})
    jsonschema.Draft4Validator(document).validate(message)  # the REST API's model check, as `make local` runs it
    assert schema.validator(document)(message) == message


def test_a_body_failing_only_a_format_is_processed_not_dead_lettered(handler, dlq_url, monkeypatch):
    document = json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    document["properties"]["email"] = {"type": "string", "format": "email"}
    monkeypatch.setattr(schema, "_check", schema.validator(document))
    assert handler.lambda_handler({"Records": [record('{"email": "not an address"}')]}, FakeContext()) == {
        "batchItemFailures": []
    }
    assert dead_letters(dlq_url) == []


def test_the_worker_leaves_the_message_as_sent_without_filling_in_defaults():
    message: dict = {}
    schema.validator({"type": "object", "properties": {"priority": {"type": "integer", "default": 5}}})(message)
    assert message == {}


def test_the_schema_the_worker_checks_is_draft_4_as_api_gateway_models_are():
    document = json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert document.get("$schema", schema.DRAFT_4) == schema.DRAFT_4
    jsonschema.Draft4Validator.check_schema(document)  # e.g. refuses a numeric exclusiveMinimum (a boolean in draft 4)


def test_a_rejected_message_whose_dead_letter_send_fails_returns_to_the_queue(handler, monkeypatch):
    """Nothing is lost on the way: reported done only once the dead-letter queue has it."""
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/no-such-queue")
    rejected = record('{"reject": true}')
    with pytest.raises(BatchProcessingError):  # the only record failed: the whole batch returns to the queue
        handler.lambda_handler({"Records": [rejected]}, FakeContext())


def test_a_rejected_fifo_message_keeps_its_group_and_does_not_hold_it_back(fifo_handler, fifo_dlq_url):
    a1, a2, a3 = record('{"n": 1}', group="a"), record("[]", group="a"), record('{"n": 3}', group="a")
    assert failed_ids(fifo_handler.lambda_handler({"Records": [a1, a2, a3]}, FakeContext())) == []
    sqs = boto3.client("sqs", region_name="eu-west-1")
    answer = sqs.receive_message(QueueUrl=fifo_dlq_url, AttributeNames=["All"])
    [dead] = answer["Messages"]
    assert (dead["Body"], dead["Attributes"]["MessageGroupId"]) == ("[]", "a")
    assert dead["Attributes"]["MessageDeduplicationId"] == a2["messageId"]  # a rerun of the record is deduplicated


def test_an_empty_batch_reports_no_failure(handler):
    assert handler.lambda_handler({"Records": []}, FakeContext()) == {"batchItemFailures": []}


def test_a_batch_where_every_message_fails_is_an_invocation_error(handler):
    # Powertools raises so that the function's Errors metric (and its alarm) sees a fully failing batch.
    with pytest.raises(BatchProcessingError):
        handler.lambda_handler({"Records": [record(FAILING), record(FAILING)]}, FakeContext())


def test_each_record_logs_one_json_line_with_its_message_id(handler, monkeypatch):
    stream = io.StringIO()  # Lambda sends the logger's stdout to CloudWatch; here we read it back
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    good, broken, rejected = record('{"a": 1}'), record(FAILING), record("nope")
    handler.lambda_handler({"Records": [good, broken, rejected]}, FakeContext())
    lines = [line for line in log_lines(stream) if "message_id" in line]
    assert [(line["message_id"], line["level"], line["message"]) for line in lines] == [
        (good["messageId"], "INFO", "Message processed"),
        (broken["messageId"], "WARNING", "Message failed; it returns to the queue"),
        (rejected["messageId"], "WARNING", "Message rejected; sent to the dead-letter queue"),
    ]
    assert lines[2]["dead_letter_id"] and lines[2]["reason"].startswith("RejectedMessage: not JSON")
    assert lines[0]["result"] == {"status": "processed", "fields": ["a"]}


def test_each_invocation_emits_its_processed_and_failed_counts_as_emf(handler, capsys):
    """CloudWatch reads the metrics from one embedded-metric-format line per invocation, in the project's namespace."""
    capsys.readouterr()
    good, broken, also_good, rejected = record('{"a": 1}'), record(FAILING), record('{"b": 2}'), record("[]")
    handler.lambda_handler({"Records": [good, broken, also_good, rejected]}, FakeContext())
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "worker-tests"
    assert {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]} == {
        "MessagesProcessed": "Count",
        "MessagesFailed": "Count",
        "MessagesRejected": "Count",
    }
    assert sum(emf["MessagesProcessed"]) == 2 and sum(emf["MessagesFailed"]) == 1
    assert sum(emf["MessagesRejected"]) == 1


def test_fifo_failure_stops_the_rest_of_its_group_only(fifo_handler):
    a1, a2, a3 = record('{"n": 1}', group="a"), record(FAILING, group="a"), record('{"n": 3}', group="a")
    b1 = record('{"n": 1}', group="b")
    response = fifo_handler.lambda_handler({"Records": [a1, a2, b1, a3]}, FakeContext())
    assert failed_ids(response) == [a2["messageId"], a3["messageId"]]


def test_a_warm_fifo_processor_starts_each_batch_afresh(fifo_handler):
    """Lambda reuses the processor between invocations: a group that failed in one batch does not hold back the
    next batch's records of that group."""
    first = [record('{"n": 1}', group="a"), record(FAILING, group="a"), record('{"n": 3}', group="a")]
    assert len(failed_ids(fifo_handler.lambda_handler({"Records": first}, FakeContext()))) == 2
    again = [record('{"n": 2}', group="a"), record('{"n": 3}', group="a")]
    assert failed_ids(fifo_handler.lambda_handler({"Records": again}, FakeContext())) == []


def test_the_dead_letter_copy_of_a_reject_at_the_queues_maximum_still_fits(handler, dlq_url, monkeypatch):
    """The reason is cut to what the queue still takes (1 MiB, body and attributes): a copy that cannot be sent would
    fail on every retry and reach the dead-letter queue only after dlq_retries receives, without its reason."""
    sqs = boto3.client("sqs", region_name="eu-west-1")
    sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MaximumMessageSize": "1048576"})
    room = 20  # bytes left for the reason attribute's value, once its name and type are counted
    body = json.dumps({"reject": True, "padding": ""})
    body = body.replace(
        '""', '"' + "x" * (1_048_576 - len(body) - len("DeadLetterReason") - len("String") - room) + '"'
    )
    assert failed_ids(handler.lambda_handler({"Records": [record(body)]}, FakeContext())) == []
    [dead] = dead_letters(dlq_url)
    reason = dead["MessageAttributes"]["DeadLetterReason"]["StringValue"]
    assert dead["Body"] == body and reason.startswith("RejectedMessage: ") and len(reason.encode()) == room
