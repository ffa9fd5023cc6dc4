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

TOPIC_VARIABLE = "RESULT_TOPIC_ARN"

metrics = Metrics()  # Powertools metrics instances share one set: these are flushed with the handler's


def enabled() -> bool:
    return bool(os.environ.get(TOPIC_VARIABLE))


@cache
def sns_client() -> Any:
    """Created on the first publish and kept for the life of the execution environment (boto3 is imported here)."""
    return clients.client("sns")


def publish(record: SQSRecord, result: Any) -> None:
    try:
        sns_client().publish(
            TopicArn=os.environ[TOPIC_VARIABLE],
            Message=json.dumps(result, ensure_ascii=False),
            MessageAttributes={"messageId": {"DataType": "String", "StringValue": record.message_id}},
        )
    except Exception:
        metrics.add_metric(name="ResultsPublishFailed", unit=MetricUnit.Count, value=1)  # alarm results-publish-failed
        raise
