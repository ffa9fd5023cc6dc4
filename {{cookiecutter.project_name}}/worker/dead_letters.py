"""Sends a message that can never succeed straight to the dead-letter queue, with the reason, on its first receive
(instead of dlq_retries failed receives first). The handler reports the record as done only once the send has
succeeded: if it fails, the record fails like any other and SQS dead-letters it after dlq_retries receives, so a
message is never lost on the way (at worst it reaches the dead-letter queue twice).
"""

from __future__ import annotations

import base64
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import clients
import limits

URL_VARIABLE = "DEAD_LETTER_QUEUE_URL"
REASON_ATTRIBUTE = "DeadLetterReason"  # why the worker rejected it, beside the message's own attributes
MAX_REASON = 1000  # bytes
MAX_ATTRIBUTES = 10  # SQS's most message attributes per message


@cache
def sqs_client() -> Any:
    """Created on the first rejection (boto3 is imported here, not at the cold start)."""
    return clients.client("sqs")


def _attributes(record: SQSRecord) -> dict[str, dict[str, Any]]:
    """The record's message attributes as SendMessage takes them (the event carries binary values in base64)."""
    copied = {}
    for name, attribute in (record.raw_event.get("messageAttributes") or {}).items():
        data_type = attribute["dataType"]
        if data_type.startswith("Binary"):
            copied[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(attribute["binaryValue"])}
        else:
            copied[name] = {"DataType": data_type, "StringValue": attribute["stringValue"]}
    return copied


def with_reason(body: str, attributes: dict[str, dict[str, Any]], reason: str) -> dict[str, dict[str, Any]]:
    """The attributes and the reason, cut to what the queue still takes: the copy of a message already at the
    queue's maximum size, or with SQS's 10 attributes, must still fit (else it would fail on every retry)."""
    if len(attributes) >= MAX_ATTRIBUTES:
        return attributes
    room = limits.QUEUE_MAX_BYTES - limits.message_bytes(body, attributes) - len(REASON_ATTRIBUTE) - len("String")
    text = reason.encode("utf-8")[: min(room, MAX_REASON)].decode("utf-8", errors="ignore")
    return attributes | ({REASON_ATTRIBUTE: {"DataType": "String", "StringValue": text}} if text else {})


def send(record: SQSRecord, reason: str) -> str:
    """Put the record's body and attributes, and the reason, on the dead-letter queue; the new message's id."""
    url = os.environ[URL_VARIABLE]
    attributes = with_reason(record.body, _attributes(record), reason)
    entry: dict[str, Any] = {"QueueUrl": url, "MessageBody": record.body, "MessageAttributes": attributes}
    if url.endswith(".fifo"):  # the message's own group; a rerun of the same record is deduplicated
        entry["MessageGroupId"] = record.attributes.message_group_id
        entry["MessageDeduplicationId"] = record.message_id
    return sqs_client().send_message(**entry)["MessageId"]
