"""Lambda entry point: batch plumbing around logic.process (Powertools partial batch responses, logs, metrics).

Each record is processed on its own: a record that is not JSON, or that logic.process rejects, is reported in
`batchItemFailures` and goes back to the queue alone; the rest of the batch is deleted as done.
On a FIFO queue, a failure also fails the records after it *in the same message group*, so order is kept.
Other modules may act on each result through RESULT_HOOKS (the WebSocket flavour's replies.py sends it back to
the client); a hook that raises fails its record like the logic would.

Traces come from Lambda's active tracing (each invocation, with its cold start, in X-Ray). The X-Ray SDK (Powertools
Tracer) is not loaded: it adds ~400 ms to every cold start. To trace each record and the AWS calls your logic makes,
add `tracer = Tracer()` with `@tracer.capture_lambda_handler` and `@tracer.capture_method` (README, "Performance").
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
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

logger = Logger()
metrics = Metrics()
processor = (
    SqsFifoPartialProcessor(skip_group_on_error=True)
    if os.environ.get("QUEUE_TYPE") == "fifo"
    else BatchProcessor(event_type=EventType.SQS)
)
# Called with (record, result) after logic.process succeeds, inside the record's own success or failure.
RESULT_HOOKS: list[Callable[[SQSRecord, Any], None]] = []


def record_handler(record: SQSRecord) -> Any:
    try:
        result = logic.process(json.loads(record.body))
        for hook in RESULT_HOOKS:
            hook(record, result)
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
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not event.get("Records"):  # Lambda never sends one, but a test or a replay tool may
        return {"batchItemFailures": []}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
