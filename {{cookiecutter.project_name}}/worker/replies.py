"""Replies to the WebSocket client that sent a message, through the API's @connections endpoint.

This module is the WebSocket flavour's Lambda entry point (`replies.lambda_handler`): the plumbing of handler.py,
plus a result hook that sends each message's result to the connection named in its `connectionId` attribute
(set by the API's request template). The endpoint (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>) comes
from the CONNECTIONS_ENDPOINT environment variable that the stack sets on the function.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import clients
import handler
import limits
import logic

ENDPOINT_VARIABLE = "CONNECTIONS_ENDPOINT"

logger = Logger(child=True)


@cache
def connections_client() -> Any:
    """Created on the first reply and kept for the life of the execution environment (warm invocations reuse it);
    boto3 is imported here, not at the cold start (~150 ms)."""
    return clients.client("apigatewaymanagementapi", endpoint_url=os.environ[ENDPOINT_VARIABLE])


def send(connection_id: str, payload: Any) -> bool:
    """Post `payload` as one JSON text frame to the connection. False when the client has gone already."""
    from botocore.exceptions import ClientError

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


def reply_to_sender(record: SQSRecord, result: Any) -> None:
    sender = record.message_attributes["connectionId"]
    if sender is not None:
        send(sender.string_value, result)


def check_size(record: SQSRecord, result: Any) -> None:
    """A reply larger than API Gateway posts to a connection can never be sent: a reject, before any side effect."""
    size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
    if reason := limits.too_big("the reply", size, limits.REPLY_MAX_BYTES):
        raise logic.RejectedMessage(reason)


handler.RESULT_CHECKS.append(check_size)
handler.RESULT_HOOKS.append(reply_to_sender)
lambda_handler = handler.lambda_handler
