"""Where and how every flavour of API writes its access logs (one JSON object per request)."""

from __future__ import annotations

import json

import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from .encryption import log_group
from .settings import Settings

# $context variables that HTTP, REST and WebSocket APIs all provide (API Gateway guide, "logging variables" of each
# API type: WebSocket APIs document integration.error/status/latency too); integration.* tells why SQS refused.
COMMON_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "status": "$context.status",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "integrationLatency": "$context.integration.latency",
}


# What was called: HTTP and WebSocket APIs name the route; REST APIs have no routeKey, but a method and a resource.
ROUTE_FIELDS = {"routeKey": "$context.routeKey"}
REST_ROUTE_FIELDS = {"httpMethod": "$context.httpMethod", "resourcePath": "$context.resourcePath"}


def access_log_format(route_fields: dict[str, str]) -> apigw.AccessLogFormat:
    return apigw.AccessLogFormat.custom(json.dumps(COMMON_FIELDS | route_fields))


def access_log_group(scope: Construct, settings: Settings, key: kms.IKey | None) -> logs.LogGroup:
    return log_group(
        scope, "AccessLogs", settings=settings, name=f"/aws/apigateway/{settings.api_name}/access", key=key
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
        return access_log_format(ROUTE_FIELDS)
