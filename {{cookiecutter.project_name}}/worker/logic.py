"""Your business logic: one message in, one result out.

This is the module to edit. The plumbing in handler.py calls `process` once per message, logs and counts the
outcome, and reports failures to SQS one message at a time. Raise any exception to fail a message: it returns to
the queue after the visibility timeout and moves to the dead-letter queue after `dlq_retries` receives.
Return something JSON-serializable: it is logged with the message id.
"""

from __future__ import annotations

from typing import Any


class RejectedMessage(ValueError):
    """The message can never succeed as it is (retrying will not help; it ends in the dead-letter queue)."""


def process(message: Any) -> dict[str, Any]:
    """Sample logic: accept any JSON object and report which fields it carried. An object that asks for it
    (`"reject": true`) is rejected, to show the way to the dead-letter queue (try it under `make local`)."""
    if not isinstance(message, dict):
        raise RejectedMessage(f"expected a JSON object, got {type(message).__name__}")
    if message.get("reject") is True:
        raise RejectedMessage("the message asked to be rejected")
    return {"status": "processed", "fields": sorted(message)}
