"""Replies through the @connections API: the request the worker sends, a client that left, and the handler wiring."""

from __future__ import annotations

import importlib
import json
import sys
import uuid

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from test_worker import FakeContext, dead_letters, failed_ids, load_handler, record

ENDPOINT = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/dev"


def load_replies(monkeypatch: pytest.MonkeyPatch, queue_type: str, dlq: str):
    """The WebSocket entry point as Lambda loads it: a fresh handler.py, then replies.py registering its hook."""
    monkeypatch.setenv("CONNECTIONS_ENDPOINT", ENDPOINT)
    load_handler(monkeypatch, queue_type, DEAD_LETTER_QUEUE_URL=dlq)
    sys.modules.pop("replies", None)  # executed once, as in Lambda (an import then a reload would hook in twice)
    return importlib.import_module("replies")


@pytest.fixture
def replies(monkeypatch, dlq_url):
    module = load_replies(monkeypatch, "standard", dlq_url)
    yield module
    module.connections_client.cache_clear()


@pytest.fixture
def fifo_replies(monkeypatch, fifo_dlq_url):
    module = load_replies(monkeypatch, "fifo", fifo_dlq_url)
    yield module
    module.connections_client.cache_clear()


@pytest.fixture
def connections(replies):
    """The worker's @connections client with every call checked against the requests we expect."""
    with Stubber(replies.connections_client()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def from_websocket(body: str, connection_id: str, *, group: str | None = None) -> dict:
    message = record(body, group=group)
    message["messageAttributes"] = {
        "connectionId": {
            "stringValue": connection_id,
            "dataType": "String",
            "binaryListValues": [],
            "stringListValues": [],
        },
        "requestId": {
            "stringValue": str(uuid.uuid4()),
            "dataType": "String",
            "binaryListValues": [],
            "stringListValues": [],
        },
    }
    return message


def test_the_client_talks_to_the_stage_endpoint_and_is_created_once(replies):
    client = replies.connections_client()
    assert client.meta.endpoint_url == ENDPOINT
    assert client.meta.service_model.service_name == "apigatewaymanagementapi"
    assert replies.connections_client() is client


def test_a_reply_posts_the_payload_as_json_to_the_connection(replies, connections):
    payload = {"status": "processed", "fields": ["naïve", "🚀"]}
    connections.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": "L0SM9cOFvHcCIhw=", "Data": json.dumps(payload, ensure_ascii=False).encode("utf-8")},
    )
    assert replies.send("L0SM9cOFvHcCIhw=", payload) is True


def test_a_client_that_left_is_logged_and_not_an_error(replies, connections):
    connections.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
    assert replies.send("gone-connection=", {"status": "processed"}) is False


def test_other_errors_fail_the_message_so_that_it_is_retried(replies, connections):
    connections.add_client_error(
        "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
    )
    with pytest.raises(ClientError):
        replies.send("L0SM9cOFvHcCIhw=", {"status": "processed"})


def test_the_entry_point_registers_the_reply_hook_once(replies):
    import handler

    assert handler.RESULT_HOOKS == [replies.reply_to_sender]
    assert replies.lambda_handler is handler.lambda_handler


def test_the_handler_sends_the_result_back_to_the_sender(replies, connections):
    connections.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": "sender-1=", "Data": json.dumps({"status": "processed", "fields": ["order"]}).encode()},
    )
    response = replies.lambda_handler({"Records": [from_websocket('{"order": 42}', "sender-1=")]}, FakeContext())
    assert response == {"batchItemFailures": []}


def test_the_handler_does_not_reply_to_messages_without_a_sender(replies, connections):
    # No response is stubbed: a post_to_connection call would fail the record.
    response = replies.lambda_handler({"Records": [record('{"order": 42}')]}, FakeContext())
    assert response == {"batchItemFailures": []}


def test_a_sender_that_left_does_not_fail_its_message(replies, connections):
    connections.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
    response = replies.lambda_handler({"Records": [from_websocket('{"order": 42}', "gone=")]}, FakeContext())
    assert response == {"batchItemFailures": []}


def test_a_failed_reply_fails_its_message_alone(replies, connections):
    throttled, fine = from_websocket('{"n": 1}', "c-1="), from_websocket('{"n": 2}', "c-2=")
    connections.add_client_error(
        "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
    )
    connections.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": "c-2=", "Data": json.dumps({"status": "processed", "fields": ["n"]}).encode()},
    )
    response = replies.lambda_handler({"Records": [throttled, fine]}, FakeContext())
    assert failed_ids(response) == [throttled["messageId"]]


def test_a_rejected_message_gets_no_reply_and_goes_to_the_dlq(replies, connections, dlq_url):
    rejected, fine = from_websocket("[1, 2]", "c-1="), from_websocket('{"n": 2}', "c-2=")
    connections.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": "c-2=", "Data": json.dumps({"status": "processed", "fields": ["n"]}).encode()},
    )
    response = replies.lambda_handler({"Records": [rejected, fine]}, FakeContext())
    assert failed_ids(response) == []
    [dead] = dead_letters(dlq_url)
    assert dead["Body"] == "[1, 2]" and dead["MessageAttributes"]["connectionId"]["StringValue"] == "c-1="


def test_a_reply_too_big_for_the_connection_is_rejected_without_posting(replies, connections, dlq_url, monkeypatch):
    """API Gateway posts at most 128 KB to a connection: a bigger reply would fail on every retry."""
    logic = importlib.import_module("logic")
    monkeypatch.setattr(logic, "process", lambda message: {"report": "x" * 131_072})
    # No response is stubbed: a post_to_connection call would fail the record.
    response = replies.lambda_handler({"Records": [from_websocket('{"n": 1}', "c-1=")]}, FakeContext())
    assert failed_ids(response) == []
    [dead] = dead_letters(dlq_url)
    reason = dead["MessageAttributes"]["DeadLetterReason"]["StringValue"]
    size = len(json.dumps({"report": "x" * 131_072}))
    assert reason == f"RejectedMessage: the reply is {size:,} bytes; at most 131,072 fit"


def test_with_the_fifo_processor_a_failed_reply_holds_back_its_group_only(fifo_replies):
    a1, a2 = from_websocket('{"n": 1}', "c-a=", group="a"), from_websocket('{"n": 2}', "c-a=", group="a")
    b1 = from_websocket('{"n": 1}', "c-b=", group="b")
    with Stubber(fifo_replies.connections_client()) as connections:
        connections.add_client_error(
            "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
        )
        connections.add_response(
            "post_to_connection",
            {},
            {"ConnectionId": "c-b=", "Data": json.dumps({"status": "processed", "fields": ["n"]}).encode()},
        )
        response = fifo_replies.lambda_handler({"Records": [a1, a2, b1]}, FakeContext())
        connections.assert_no_pending_responses()  # no reply for a2: it was not processed
    assert failed_ids(response) == [a1["messageId"], a2["messageId"]]


def test_a_duplicate_is_answered_with_the_first_result(monkeypatch, dlq_url, idempotency_table):
    """idempotency = dynamodb: a client's retry (same key, same body) is not processed again; on its new connection
    it gets the stored result."""
    monkeypatch.setenv("IDEMPOTENCY_TABLE", idempotency_table)
    replies = load_replies(monkeypatch, "standard", dlq_url)
    sent, runs = [], []
    monkeypatch.setattr(replies, "send", lambda connection_id, payload: sent.append((connection_id, payload)))
    logic = importlib.import_module("logic")
    monkeypatch.setattr(logic, "process", lambda message: runs.append(message) or {"run": len(runs)})
    first = from_websocket('{"idempotency_key": "k-1", "n": 1}', "c-1=")
    retry = from_websocket('{"idempotency_key": "k-1", "n": 1}', "c-2=")  # reconnected: another connection
    for message in (first, retry):
        assert failed_ids(replies.lambda_handler({"Records": [message]}, FakeContext())) == []
    assert sent == [("c-1=", {"run": 1}), ("c-2=", {"run": 1})] and len(runs) == 1
