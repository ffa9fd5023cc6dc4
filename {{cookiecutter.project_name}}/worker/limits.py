"""The size limits a result or a dead-letter copy meets after the logic has run, checked before the side effect.

A result that can never fit where it goes (the results topic, the WebSocket client) would fail its publish or reply
on every retry, run the logic again each time, and end in the dead-letter queue after dlq_retries receives. Checked
first, it is a reject: the message goes to the dead-letter queue at once, with the reason, and nothing is sent.
Sizes are counted as the services count them: the body's UTF-8 bytes plus each message attribute's name, data type
and value.
"""

from __future__ import annotations

import os
from typing import Any

SNS_MAX_BYTES = 262_144  # SNS Publish: 256 KB, message and attributes
REPLY_MAX_BYTES = 131_072  # API Gateway @connections PostToConnection: 128 KB
# The queues' MaximumMessageSize, as the stack sets it (settings.max_message_bytes).
QUEUE_MAX_BYTES = int(os.environ.get("MAX_MESSAGE_BYTES", "1048576"))


def message_bytes(body: str, attributes: dict[str, dict[str, Any]] | None = None) -> int:
    size = len(body.encode("utf-8"))
    for name, attribute in (attributes or {}).items():
        value = attribute.get("StringValue", attribute.get("BinaryValue", b""))
        size += len(name.encode("utf-8")) + len(attribute["DataType"].encode("utf-8"))
        size += len(value) if isinstance(value, bytes) else len(value.encode("utf-8"))
    return size


def too_big(what: str, size: int, limit: int) -> str | None:
    """The reject reason when `size` bytes exceed `limit`, else None."""
    return f"{what} is {size:,} bytes; at most {limit:,} fit" if size > limit else None
