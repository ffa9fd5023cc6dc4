"""Lambda entry point: batch plumbing around logic.process (Powertools partial batch responses, logs, traces, metrics).

Each record is processed on its own: a record that is not JSON, or that logic.process rejects, is reported in
`batchItemFailures` and goes back to the queue alone; the rest of the batch is deleted as done.
On a FIFO queue, a failure also fails the records after it *in the same message group*, so order is kept.
Behind the WebSocket API, the result also goes back to the client that sent the message (replies.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

import logic

try:  # websocket flavour only: replies.py sends each result back to the client that sent the message
    import replies
except ModuleNotFoundError as missing:  # the http and rest flavours have no replies module
    if missing.name != "replies":
        raise
    replies = None

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = (
    SqsFifoPartialProcessor(skip_group_on_error=True)
    if os.environ.get("QUEUE_TYPE") == "fifo"
    else BatchProcessor(event_type=EventType.SQS)
)


def reply_to_sender(record: SQSRecord, result: Any) -> None:
    """WebSocket flavour: the result goes back to the connection named in the message's connectionId attribute."""
    sender = record.message_attributes["connectionId"]
    if replies is not None and sender is not None:
        replies.send(sender.string_value, result)


@tracer.capture_method
def record_handler(record: SQSRecord) -> Any:
    try:
        result = logic.process(json.loads(record.body))
        reply_to_sender(record, result)
    except Exception as error:
        logger.warning(
            "Message failed; it returns to the queue",
            message_id=record.message_id,
            error=f"{type(error).__name__}: {error}",
        )
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=1)
        raise
    logger.info("Message processed", message_id=record.message_id, result=result)
    metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not event.get("Records"):  # Lambda never sends one, but a test or a replay tool may
        return {"batchItemFailures": []}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
