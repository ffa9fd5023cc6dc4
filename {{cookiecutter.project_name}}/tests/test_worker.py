"""The worker handler, run as Lambda runs it: partial batch responses, one JSON log line per record."""

from __future__ import annotations

import importlib
import io
import json
import uuid
from dataclasses import dataclass

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError


@dataclass
class FakeContext:
    function_name: str = "worker"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:worker"
    aws_request_id: str = "request-1"


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


def load_handler(monkeypatch: pytest.MonkeyPatch, queue_type: str):
    monkeypatch.setenv("QUEUE_TYPE", queue_type)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "worker-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "worker-tests")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return importlib.reload(importlib.import_module("handler"))


@pytest.fixture
def handler(monkeypatch):
    return load_handler(monkeypatch, "standard")


@pytest.fixture
def fifo_handler(monkeypatch):
    return load_handler(monkeypatch, "fifo")


def failed_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_batch_of_good_messages_reports_no_failure(handler):
    event = {"Records": [record(json.dumps({"order": n})) for n in range(3)]}
    assert handler.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}


def test_one_rejected_message_fails_alone(handler):
    good, rejected, also_good = record('{"a": 1}'), record("[1, 2, 3]"), record('{"b": 2}')
    response = handler.lambda_handler({"Records": [good, rejected, also_good]}, FakeContext())
    assert failed_ids(response) == [rejected["messageId"]]


def test_malformed_json_fails_alone(handler):
    broken, good = record('{"unterminated": '), record('{"ok": true}')
    response = handler.lambda_handler({"Records": [broken, good]}, FakeContext())
    assert failed_ids(response) == [broken["messageId"]]


def test_an_empty_batch_reports_no_failure(handler):
    assert handler.lambda_handler({"Records": []}, FakeContext()) == {"batchItemFailures": []}


def test_a_batch_where_every_message_fails_is_an_invocation_error(handler):
    # Powertools raises so that the function's Errors metric (and its alarm) sees a fully failing batch.
    with pytest.raises(BatchProcessingError):
        handler.lambda_handler({"Records": [record("not json"), record("[]")]}, FakeContext())


def test_each_record_logs_one_json_line_with_its_message_id(handler, monkeypatch):
    stream = io.StringIO()  # Lambda sends the logger's stdout to CloudWatch; here we read it back
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    good, broken = record('{"a": 1}'), record("nope")
    handler.lambda_handler({"Records": [good, broken]}, FakeContext())
    lines = [line for line in log_lines(stream) if "message_id" in line]
    assert [(line["message_id"], line["level"]) for line in lines] == [
        (good["messageId"], "INFO"),
        (broken["messageId"], "WARNING"),
    ]
    assert lines[0]["result"] == {"status": "processed", "fields": ["a"]}


def test_each_invocation_emits_its_processed_and_failed_counts_as_emf(handler, capsys):
    """CloudWatch reads the metrics from one embedded-metric-format line per invocation, in the project's namespace."""
    capsys.readouterr()
    good, broken, also_good = record('{"a": 1}'), record("nope"), record('{"b": 2}')
    handler.lambda_handler({"Records": [good, broken, also_good]}, FakeContext())
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "worker-tests"
    assert {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]} == {
        "MessagesProcessed": "Count",
        "MessagesFailed": "Count",
    }
    assert sum(emf["MessagesProcessed"]) == 2 and sum(emf["MessagesFailed"]) == 1


def test_fifo_failure_stops_the_rest_of_its_group_only(fifo_handler):
    a1, a2, a3 = record('{"n": 1}', group="a"), record("broken", group="a"), record('{"n": 3}', group="a")
    b1 = record('{"n": 1}', group="b")
    response = fifo_handler.lambda_handler({"Records": [a1, a2, b1, a3]}, FakeContext())
    assert failed_ids(response) == [a2["messageId"], a3["messageId"]]


def test_a_warm_fifo_processor_starts_each_batch_afresh(fifo_handler):
    """Lambda reuses the processor between invocations: a group that failed in one batch does not hold back the
    next batch's records of that group."""
    first = [record('{"n": 1}', group="a"), record("broken", group="a"), record('{"n": 3}', group="a")]
    assert len(failed_ids(fifo_handler.lambda_handler({"Records": first}, FakeContext()))) == 2
    again = [record('{"n": 2}', group="a"), record('{"n": 3}', group="a")]
    assert failed_ids(fifo_handler.lambda_handler({"Records": again}, FakeContext())) == []
