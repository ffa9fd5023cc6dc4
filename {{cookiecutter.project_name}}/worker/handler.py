"""Lambda entry point: batch plumbing around logic.process (Powertools partial batch responses, logs, metrics).

Each record is processed on its own, in three steps:
1. schema.parse: the body must be JSON and valid against schemas/message.json;
2. logic.process, and then, once per message, the publish to the results topic (result_topic = sns); with
   idempotency = dynamodb both run once per message key (idempotency.py) and a duplicate gets the stored result;
3. RESULT_HOOKS, on every delivery: the WebSocket flavour's replies.py sends the result back to the client.
Two kinds of failure:
- a message that can never succeed (not JSON, against the schema, logic.RejectedMessage) goes to the dead-letter
  queue at once, with the reason (dead_letters.py), and its record is done;
- any other exception (a bug, a downstream outage, a failed publish or reply) fails the record: it is reported in
  `batchItemFailures`, returns to the queue after the visibility timeout, and reaches the dead-letter queue after
  dlq_retries receives. On a FIFO queue it also fails the records after it *in the same message group*.

Traces come from Lambda's active tracing (each invocation, with its cold start, in X-Ray). The X-Ray SDK (Powertools
Tracer) is not loaded: it adds ~400 ms to every cold start. To trace each record and the AWS calls your logic makes,
add `tracer = Tracer()` with `@tracer.capture_lambda_handler` and `@tracer.capture_method` (README, "Performance").
"""

from __future__ import annotations

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

import dead_letters
import logic
import results
import schema

logger = Logger()
metrics = Metrics()
processor = (
    SqsFifoPartialProcessor(skip_group_on_error=True)
    if os.environ.get("QUEUE_TYPE") == "fifo"
    else BatchProcessor(event_type=EventType.SQS)
)
# Called with (record, result) on every delivery of a message, after it was processed (or found processed already),
# inside the record's own success or failure.
RESULT_HOOKS: list[Callable[[SQSRecord, Any], None]] = []
# Called with (record, result) once the logic has run, before any side effect: each raises logic.RejectedMessage
# for a result that can never be sent where it goes (too big for the topic or the client, limits.py).
RESULT_CHECKS: list[Callable[[SQSRecord, Any], None]] = []


def process(record: SQSRecord, message: Any) -> Any:
    """What happens once per message: the logic, and the publish of its result when the stack made a topic."""
    result = logic.process(message)
    for check in RESULT_CHECKS:
        check(record, result)
    if results.enabled():
        results.publish(record, result)
    return result


if results.enabled():
    RESULT_CHECKS.append(results.check_size)


# settings.idempotency = dynamodb: the stack names a table. Powertools idempotency loads boto3, so it is imported
# (at the cold start) only then.
IDEMPOTENT = bool(os.environ.get("IDEMPOTENCY_TABLE"))
if IDEMPOTENT:
    import idempotency

    process = idempotency.once(process)


def handle(record: SQSRecord) -> Any:
    try:
        result = process(record, schema.parse(record.body))
    except logic.RejectedMessage as rejection:
        reason = f"{type(rejection).__name__}: {rejection}"
        dead_letter_id = dead_letters.send(record, reason)  # raises if the send fails: the record fails then
        logger.warning(
            "Message rejected; sent to the dead-letter queue",
            message_id=record.message_id,
            dead_letter_id=dead_letter_id,
            reason=reason,
        )
        metrics.add_metric(name="MessagesRejected", unit=MetricUnit.Count, value=1)
        return None
    for hook in RESULT_HOOKS:
        hook(record, result)
    logger.info("Message processed", message_id=record.message_id, result=result)
    metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=1)
    return result


def record_handler(record: SQSRecord) -> Any:
    try:
        return handle(record)
    except Exception as error:
        logger.warning(
            "Message failed; it returns to the queue",
            message_id=record.message_id,
            error=f"{type(error).__name__}: {error}",
        )
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=1)
        raise


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not event.get("Records"):  # Lambda never sends one, but a test or a replay tool may
        return {"batchItemFailures": []}
    if IDEMPOTENT:  # records left in progress expire when this invocation's time is up
        idempotency.config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
