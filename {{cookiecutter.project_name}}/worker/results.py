"""Publishes each result to the results topic (result_topic = sns) for the subscribers to fan out: the result as
JSON, with the SQS message id as the `messageId` message attribute (subscribers filter or deduplicate on it).
A publish that fails raises, so the record fails and is retried like any other failure.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import clients
import limits
import logic

TOPIC_VARIABLE = "RESULT_TOPIC_ARN"

metrics = Metrics()  # Powertools metrics instances share one set: these are flushed with the handler's


def enabled() -> bool:
    return bool(os.environ.get(TOPIC_VARIABLE))


@cache
def sns_client() -> Any:
    """Created on the first publish and kept for the life of the execution environment (boto3 is imported here)."""
    return clients.client("sns")


def _notice(record: SQSRecord, result: Any) -> tuple[str, dict[str, dict[str, str]]]:
    """The message and attributes published for a result."""
    attributes = {"messageId": {"DataType": "String", "StringValue": record.message_id}}
    return json.dumps(result, ensure_ascii=False), attributes


def check_size(record: SQSRecord, result: Any) -> None:
    """A result larger than SNS takes can never be published: a reject, before anything is sent."""
    size = limits.message_bytes(*_notice(record, result))
    if reason := limits.too_big("the result to publish", size, limits.SNS_MAX_BYTES):
        raise logic.RejectedMessage(reason)


def publish(record: SQSRecord, result: Any) -> None:
    message, attributes = _notice(record, result)
    try:
        sns_client().publish(TopicArn=os.environ[TOPIC_VARIABLE], Message=message, MessageAttributes=attributes)
    except Exception:
        metrics.add_metric(name="ResultsPublishFailed", unit=MetricUnit.Count, value=1)  # alarm results-publish-failed
        raise
