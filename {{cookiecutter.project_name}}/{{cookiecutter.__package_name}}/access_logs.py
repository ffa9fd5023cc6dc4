"""Where and how every flavour of API writes its access logs (one JSON object per request)."""

from __future__ import annotations

import json

import jsii

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct

from .settings import Settings

# $context variables that HTTP, REST and WebSocket APIs all provide; integration.* tells why SQS refused a message.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "integrationLatency": "$context.integration.latency",
}


def access_log_format() -> apigw.AccessLogFormat:
    return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


def access_log_group(scope: Construct, settings: Settings) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        "AccessLogs",
        log_group_name=f"/aws/apigateway/{settings.api_name}/access",
        retention=settings.log_retention,
        removal_policy=settings.removal_policy,
    )


@jsii.implements(apigwv2.IAccessLogSettings)
class StageAccessLogs:
    """Access log settings for HTTP and WebSocket API stages."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return access_log_format()
