"""Processes each message once (idempotency = dynamodb), with Powertools idempotency and a DynamoDB table.

A message's key is the client's idempotency key (the field named by IDEMPOTENCY_KEY_FIELD, `idempotency_key` by
default) or, without one, its whole body: a client's retry with the same key, and a second delivery of the same
message by SQS, find the first one's record. While it is in progress a duplicate fails and returns to the queue;
once it is done a duplicate gets the stored result, without running the logic again. A failure deletes the record,
so the retry runs for real. Records expire after IDEMPOTENCY_EXPIRY_SECONDS (settings.idempotency_expiry).

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

import clients

TABLE_VARIABLE = "IDEMPOTENCY_TABLE"
KEY_PREFIX = "message"  # the records' keys are message#<hash>, whatever the function is called

logger = Logger(child=True)


def _reused(response: Any, record: Any) -> Any:
    logger.info("Duplicate message: the stored result is reused", idempotency_key=record.idempotency_key)
    return response


config = IdempotencyConfig(
    expires_after_seconds=int(os.environ.get("IDEMPOTENCY_EXPIRY_SECONDS", "3600")), response_hook=_reused
)
KEY_FIELD = os.environ.get("IDEMPOTENCY_KEY_FIELD", "idempotency_key")


def key_of(record: SQSRecord, message: Any) -> dict[str, str]:
    """What identifies a message: the client's key when it sent one, else the body (Powertools hashes either)."""
    key = message.get(KEY_FIELD) if isinstance(message, dict) else None
    return {"key": key} if isinstance(key, str) and key else {"body": record.body}


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
        return run(record, message, key=key_of(record, message))

    return wrapped
