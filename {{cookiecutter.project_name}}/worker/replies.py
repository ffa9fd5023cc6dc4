"""Replies to the WebSocket client that sent a message, through the API's @connections endpoint.

The API puts the sender's connection id in the message attribute `connectionId`; handler.py calls `send` with it
and the result of logic.process. The endpoint (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>) comes
from the CONNECTIONS_ENDPOINT environment variable that the stack sets on the function.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

ENDPOINT_VARIABLE = "CONNECTIONS_ENDPOINT"

logger = Logger(child=True)


@cache
def connections_client() -> Any:
    """Created on the first reply and kept for the life of the execution environment (warm invocations reuse it)."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=os.environ[ENDPOINT_VARIABLE])


def send(connection_id: str, payload: Any) -> bool:
    """Post `payload` as one JSON text frame to the connection. False when the client has gone already."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        connections_client().post_to_connection(ConnectionId=connection_id, Data=data)
    except ClientError as error:
        if error.response["Error"]["Code"] != "GoneException":
            raise  # throttled or denied: the message fails and is retried like any other failure
        # The client disconnected before its answer was ready; the work itself is done, so the message is too.
        logger.info("Client left before the reply", connection_id=connection_id)
        return False
    return True
