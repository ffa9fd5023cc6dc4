"""The worker's optional parts, whatever this project's answers (settings.py can switch them on later): results
published to an SNS topic (result_topic = sns) and idempotent processing with DynamoDB (idempotency = dynamodb),
against moto's SNS, SQS and DynamoDB. The stack's side (topic, table, grants, environment) is in test_options.py."""

from __future__ import annotations

import importlib
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from conftest import unique
from test_worker import FakeContext, dead_letters, failed_ids, load_handler, record

REGION = "eu-west-1"


@pytest.fixture
def results_topic(aws) -> tuple[str, str]:
    """A topic, and a queue subscribed to it that shows what was published (with its attributes)."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=unique("results"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("subscriber"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, queue


def published(queue: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def calls(monkeypatch) -> list:
    """Every message logic.process ran on, in order."""
    logic, seen = importlib.import_module("logic"), []
    process = logic.process

    def counted(message):
        seen.append(message)
        return process(message)

    monkeypatch.setattr(logic, "process", counted)
    return seen


def test_each_result_is_published_with_its_message_id(monkeypatch, dlq_url, results_topic):
    topic, subscriber = results_topic
    handler = load_handler(monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, RESULT_TOPIC_ARN=topic)
    first, second = record('{"a": 1}'), record('{"b": 2}')
    assert failed_ids(handler.lambda_handler({"Records": [first, second]}, FakeContext())) == []
    notices = sorted(published(subscriber), key=lambda n: n["MessageAttributes"]["messageId"]["Value"])
    expected = sorted(
        [
            (first["messageId"], {"status": "processed", "fields": ["a"]}),
            (second["messageId"], {"status": "processed", "fields": ["b"]}),
        ]
    )
    assert [(n["MessageAttributes"]["messageId"]["Value"], json.loads(n["Message"])) for n in notices] == expected


def test_a_failed_publish_fails_its_record_and_is_counted(monkeypatch, dlq_url, capsys):
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"
    handler = load_handler(monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, RESULT_TOPIC_ARN=missing)
    capsys.readouterr()
    good = record('{"a": 1}')
    with pytest.raises(Exception, match="All records failed"):  # the only record failed: the batch returns
        handler.lambda_handler({"Records": [good]}, FakeContext())
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(emf["ResultsPublishFailed"]) == 1 and sum(emf["MessagesFailed"]) == 1


def idempotent_handler(monkeypatch, dlq_url, idempotency_table, **environment):
    return load_handler(
        monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, IDEMPOTENCY_TABLE=idempotency_table, **environment
    )


def test_the_same_message_delivered_twice_is_processed_once_and_two_messages_twice(
    monkeypatch, dlq_url, idempotency_table, calls
):
    """Without a client's key a message is one SQS delivery: a redelivery is a duplicate, another request with the
    same body is not (two clients may well send the same order twice)."""
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    body = '{"order": 42}'
    first, redelivered, second_request = record(body), record(body), record(body)
    redelivered["messageId"] = first["messageId"]  # SQS hands out the same message again
    for event in ([first], [redelivered], [second_request]):
        assert failed_ids(handler.lambda_handler({"Records": event}, FakeContext())) == []
    assert calls == [{"order": 42}, {"order": 42}]


def test_on_fifo_a_delivery_is_its_deduplication_id(monkeypatch, fifo_dlq_url, idempotency_table, calls):
    handler = load_handler(monkeypatch, "fifo", DEAD_LETTER_QUEUE_URL=fifo_dlq_url, IDEMPOTENCY_TABLE=idempotency_table)
    first, again = record('{"order": 1}', group="g"), record('{"order": 1}', group="g")
    again["attributes"]["MessageDeduplicationId"] = first["attributes"]["MessageDeduplicationId"]
    for event in ([first], [again]):
        assert failed_ids(handler.lambda_handler({"Records": event}, FakeContext())) == []
    assert calls == [{"order": 1}]


def test_a_clients_retry_with_the_same_key_and_body_gets_the_earlier_result(
    monkeypatch, dlq_url, idempotency_table, calls
):
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    body = '{"idempotency_key": "k-1", "n": 1}'
    first, retry, other = record(body), record(body), record('{"idempotency_key": "k-2", "n": 1}')
    handler.lambda_handler({"Records": [first, other]}, FakeContext())
    stream = io.StringIO()  # the worker's log of the retry (Lambda sends the logger's stdout to CloudWatch)
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    handler.lambda_handler({"Records": [retry]}, FakeContext())
    assert [c["idempotency_key"] for c in calls] == ["k-1", "k-2"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [processed] = [line for line in lines if line["message"] == "Message processed"]
    assert processed["result"] == {"status": "processed", "fields": ["idempotency_key", "n"]}  # the first one's
    assert any(line["message"] == "Duplicate message: the stored result is reused" for line in lines)


def test_a_key_reused_with_another_body_is_rejected_with_the_reason(monkeypatch, dlq_url, idempotency_table, calls):
    """Not a retry but a client's mistake: it must not silently get the other request's result."""
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    first, reused = record('{"idempotency_key": "k-9", "n": 1}'), record('{"idempotency_key": "k-9", "n": 2}')
    for event in ([first], [reused]):
        assert failed_ids(handler.lambda_handler({"Records": event}, FakeContext())) == []
    assert calls == [{"idempotency_key": "k-9", "n": 1}]
    [dead] = dead_letters(dlq_url)
    assert dead["Body"] == reused["body"]
    reason = dead["MessageAttributes"]["DeadLetterReason"]["StringValue"]
    assert (
        reason
        == "RejectedMessage: idempotency_key 'k-9' was used before with another body; a retry must send the same body"
    )


def test_a_duplicate_does_not_publish_its_result_again(monkeypatch, dlq_url, idempotency_table, results_topic):
    topic, subscriber = results_topic
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table, RESULT_TOPIC_ARN=topic)
    first = record('{"order": 5}')
    redelivered = first | {"receiptHandle": "another"}
    for event in ([first], [redelivered]):
        assert failed_ids(handler.lambda_handler({"Records": event}, FakeContext())) == []
    assert [n["MessageAttributes"]["messageId"]["Value"] for n in published(subscriber)] == [first["messageId"]]


def test_the_key_field_and_expiry_settings_are_honoured(monkeypatch, dlq_url, idempotency_table, calls):
    """IDEMPOTENCY_KEY_FIELD and IDEMPOTENCY_EXPIRY_SECONDS, as the stack sets them from settings."""
    handler = idempotent_handler(
        monkeypatch, dlq_url, idempotency_table, IDEMPOTENCY_KEY_FIELD="request", IDEMPOTENCY_EXPIRY_SECONDS="7200"
    )
    body = '{"request": "r-1", "idempotency_key": "ignored"}'
    before = time.time()
    for event in ([record(body)], [record(body)]):  # two SQS messages, one client request
        assert failed_ids(handler.lambda_handler({"Records": event}, FakeContext())) == []
    assert len(calls) == 1
    [item] = boto3.client("dynamodb", region_name=REGION).scan(TableName=idempotency_table)["Items"]
    assert int(before) + 7200 <= int(item["expiration"]["N"]) <= time.time() + 7200


def test_a_failure_is_not_remembered_as_done(monkeypatch, dlq_url, idempotency_table, calls):
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    logic = importlib.import_module("logic")
    outage = [RuntimeError("downstream outage")]
    process = logic.process

    def flaky(message):
        result = process(message)
        if outage:
            raise outage.pop()
        return result

    monkeypatch.setattr(logic, "process", flaky)
    body = record('{"order": 7}')
    with pytest.raises(Exception, match="All records failed"):
        handler.lambda_handler({"Records": [body]}, FakeContext())
    assert handler.lambda_handler({"Records": [body]}, FakeContext()) == {"batchItemFailures": []}
    assert calls == [{"order": 7}, {"order": 7}]  # tried, failed, then processed for real on the retry
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=idempotency_table)["Items"]
    assert [item["status"]["S"] for item in items] == ["COMPLETED"]


def test_a_rejected_message_is_not_remembered_either(monkeypatch, dlq_url, idempotency_table, calls):
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    rejected = record('{"reject": true}')
    for _ in range(2):  # e.g. redriven from the dead-letter queue after the logic was fixed: it runs again
        assert handler.lambda_handler({"Records": [rejected]}, FakeContext()) == {"batchItemFailures": []}
    assert len(calls) == 2
    assert boto3.client("dynamodb", region_name=REGION).scan(TableName=idempotency_table)["Items"] == []


def test_a_duplicate_arriving_while_the_first_is_in_progress_returns_to_the_queue(
    monkeypatch, dlq_url, idempotency_table, calls
):
    """Another execution environment still runs the first delivery: the duplicate's record fails (it is retried
    later and then gets the stored result); it is neither processed twice nor taken as done."""
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    handler.idempotency.config.register_lambda_context(FakeContext())  # as each invocation does
    logic = importlib.import_module("logic")
    counted, started, release = logic.process, threading.Event(), threading.Event()

    def slow(message):
        started.set()
        assert release.wait(30)
        return counted(message)

    monkeypatch.setattr(logic, "process", slow)
    first, duplicate = record('{"order": 7}'), record('{"order": 7}')
    duplicate["messageId"] = first["messageId"]
    with ThreadPoolExecutor(max_workers=1) as other_environment:
        running = other_environment.submit(handler.record_handler, SQSRecord(first))
        assert started.wait(30)
        with pytest.raises(IdempotencyAlreadyInProgressError):
            handler.record_handler(SQSRecord(duplicate))  # the record fails: it returns to the queue
        release.set()
        assert running.result() == {"status": "processed", "fields": ["order"]}
    assert handler.record_handler(SQSRecord(duplicate)) == {"status": "processed", "fields": ["order"]}
    assert calls == [{"order": 7}]


def test_records_left_in_progress_expire_with_the_invocation(monkeypatch, dlq_url, idempotency_table, calls):
    """The Lambda context is registered: a record's in-progress lock ends when the invocation's time does, long
    before SQS hands the message out again (visibility timeout >= 6 x the function's timeout)."""
    handler = idempotent_handler(monkeypatch, dlq_url, idempotency_table)
    context = FakeContext()
    handler.lambda_handler({"Records": [record('{"order": 1}')]}, context)
    assert handler.idempotency.config.lambda_context is context


def test_a_result_too_big_to_publish_is_rejected_before_anything_is_sent(monkeypatch, dlq_url, results_topic, calls):
    """SNS takes 256 KB: a bigger result would fail its publish on every retry, and run the logic each time."""
    topic, subscriber = results_topic
    handler = load_handler(monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, RESULT_TOPIC_ARN=topic)
    logic = importlib.import_module("logic")
    result = {"report": "x" * 262_144}
    monkeypatch.setattr(logic, "process", lambda message: calls.append(message) or result)
    big = record('{"big": true}')
    assert failed_ids(handler.lambda_handler({"Records": [big]}, FakeContext())) == []
    assert len(calls) == 1  # ran once: not retried
    assert published(subscriber) == []
    # SNS counts the message and each attribute's name, type and value (messageId: the 36-character message id).
    size = len(json.dumps(result)) + len("messageId") + len("String") + len(big["messageId"])
    [dead] = dead_letters(dlq_url)
    reason = dead["MessageAttributes"]["DeadLetterReason"]["StringValue"]
    assert reason == f"RejectedMessage: the result to publish is {size:,} bytes; at most 262,144 fit"
