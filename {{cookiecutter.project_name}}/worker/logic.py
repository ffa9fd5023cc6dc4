"""Your business logic: one message in, one result out.

This is the module to edit. The plumbing in handler.py calls `process` once per message (already checked against
schemas/message.json), logs and counts the outcome, and reports failures to SQS one message at a time:
- raise RejectedMessage for a message that can never succeed: it goes to the dead-letter queue at once, with your
  reason in its `DeadLetterReason` attribute;
- raise any other exception for a failure that may pass (a downstream outage): the message returns to the queue
  after the visibility timeout, and moves to the dead-letter queue after `dlq_retries` receives.
Return something JSON-serializable: it is logged with the message id (and published, and replied, where the
project does that).
"""

from __future__ import annotations

from typing import Any


class RejectedMessage(ValueError):
    """The message can never succeed as it is (retrying will not help; it ends in the dead-letter queue)."""


def process(message: Any) -> dict[str, Any]:
    """Sample logic: accept any JSON object and report which fields it carried. Two objects show the ways to the
    dead-letter queue (try them under `make local`): `"reject": true` is rejected (there at once), `"fail": true`
    fails every time, as a bug would (there after dlq_retries receives)."""
    if not isinstance(message, dict):
        raise RejectedMessage(f"expected a JSON object, got {type(message).__name__}")
    if message.get("reject") is True:
        raise RejectedMessage("the message asked to be rejected")
    if message.get("fail") is True:
        raise RuntimeError("the message asked to fail (a stand-in for a bug or an outage)")
    return {"status": "processed", "fields": sorted(message)}
