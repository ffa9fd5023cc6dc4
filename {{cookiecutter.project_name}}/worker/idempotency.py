"""Processes each message once (idempotency = dynamodb), with Powertools idempotency and a DynamoDB table.

What counts as "the same message":
- a client's retry: the same idempotency key (the field named by IDEMPOTENCY_KEY_FIELD, `idempotency_key` by
  default) *and* the same body. It gets the first one's stored result; the logic does not run again. A key reused
  with another body is a client's mistake, not a retry: it is rejected (to the dead-letter queue at once, with the
  reason) instead of silently answered with the other request's result (Powertools payload validation);
- without a key, a second delivery of the same SQS message (at-least-once delivery; on FIFO the same deduplication
  id). Two requests that merely have the same body are two messages, and both are processed.
While the first is in progress a duplicate fails and returns to the queue. A failure deletes the record, so the
retry runs for real. Records expire after IDEMPOTENCY_EXPIRY_SECONDS (settings.idempotency_expiry).

A record left in progress by a timeout expires when the invocation's time is up (the Lambda context is registered
for each invocation): before SQS hands the message out again, since the visibility timeout is at least six times
the function's timeout. So a retried message never waits for its own stale record.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

import clients
import logic

TABLE_VARIABLE = "IDEMPOTENCY_TABLE"
KEY_PREFIX = "message"  # the records' keys are message#<hash>, whatever the function is called

logger = Logger(child=True)


def _reused(response: Any, record: Any) -> Any:
    logger.info("Duplicate message: the stored result is reused", idempotency_key=record.idempotency_key)
    return response


config = IdempotencyConfig(
    event_key_jmespath="key",  # the record's key is a hash of this (key_of)
    payload_validation_jmespath="body",  # and a duplicate's body must hash the same
    expires_after_seconds=int(os.environ.get("IDEMPOTENCY_EXPIRY_SECONDS", "3600")),
    response_hook=_reused,
)
KEY_FIELD = os.environ.get("IDEMPOTENCY_KEY_FIELD", "idempotency_key")


def key_of(record: SQSRecord, message: Any) -> dict[str, str]:
    """What identifies a message (the client's key when it sent one, else the delivery), and its body."""
    key = message.get(KEY_FIELD) if isinstance(message, dict) else None
    if isinstance(key, str) and key:
        return {"key": f"client#{key}", "body": record.body}
    delivery = record.attributes.message_deduplication_id or record.message_id
    return {"key": f"delivery#{delivery}", "body": record.body}


def once(function: Callable[[SQSRecord, Any], Any]) -> Callable[[SQSRecord, Any], Any]:
    """`function(record, message)`, run once per message key; duplicates get the first run's result."""
    persistence = DynamoDBPersistenceLayer(table_name=os.environ[TABLE_VARIABLE], boto_config=clients.config())

    @idempotent_function(
        data_keyword_argument="key", persistence_store=persistence, config=config, key_prefix=KEY_PREFIX
    )
    def run(record: SQSRecord, message: Any, *, key: dict[str, str]) -> Any:
        return function(record, message)

    @functools.wraps(function)
    def wrapped(record: SQSRecord, message: Any) -> Any:
        key = key_of(record, message)
        try:
            return run(record, message, key=key)
        except IdempotencyValidationError as error:
            reused = key["key"].removeprefix("client#")
            raise logic.RejectedMessage(
                f"{KEY_FIELD} {reused!r} was used before with another body; a retry must send the same body"
            ) from error

    return wrapped
