"""Every AWS client the worker makes, with timeouts and retries that fit inside the function's own timeout.

botocore waits 60 s to connect and 60 s for an answer by default, and retries: longer than the worker may run. A
dependency that hangs (no route from a VPC, an outage) would then time out the whole invocation, and every record
of the batch, the good ones too, would return to the queue. With these limits the call fails first, and only its
record fails. The stack derives them from the worker's timeout (settings.sdk_timeouts) and sets them in the
function's environment; use `client(...)` for the AWS calls your own logic makes, too.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

CONNECT_VARIABLE = "SDK_CONNECT_TIMEOUT_SECONDS"
READ_VARIABLE = "SDK_READ_TIMEOUT_SECONDS"
ATTEMPTS_VARIABLE = "SDK_MAX_ATTEMPTS"


@cache
def config() -> Any:
    """The botocore Config of every client: timeouts, and the standard retry mode with a bounded number of attempts."""
    from botocore.config import Config

    return Config(
        connect_timeout=float(os.environ.get(CONNECT_VARIABLE, "2")),
        read_timeout=float(os.environ.get(READ_VARIABLE, "5")),
        retries={"mode": "standard", "total_max_attempts": int(os.environ.get(ATTEMPTS_VARIABLE, "2"))},
    )


def client(service: str, **kwargs: Any) -> Any:
    """`boto3.client(service, ...)` with the worker's timeouts and retries (boto3 is imported on first use)."""
    import boto3

    return boto3.client(service, config=config(), **kwargs)
