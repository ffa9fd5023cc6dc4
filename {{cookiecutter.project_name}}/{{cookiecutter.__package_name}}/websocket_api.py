"""WebSocket API: every frame sent on a connection becomes one SQS message (no Lambda in the request path).

`$default` is an AWS service integration with SQS SendMessage; its request template (mapping/websocket_request.vtl)
puts the frame body in the message and the connection id, request id and route key in message attributes, so that
the worker can reply to the sender through the API's @connections endpoint (`connect_worker`).
The named routes of settings.websocket_routes share that integration: a frame whose `action` field names one is
queued the same way, with that name as its route key; any other frame takes `$default`.
`$connect` and `$disconnect` are mock integrations: the API itself accepts and closes connections.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnOutput, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from .access_logs import StageAccessLogs, access_log_group
from .checks import acknowledge, finding_resource
from .monitoring import PERIOD, ApiMetrics
from .queue import QueueWithDeadLetter
from .service_integration import FORM_CONTENT_TYPE, account_logging_role, send_message_role, send_message_template
from .settings import Settings
from .worker import Worker

# API Gateway picks the request template by this expression; the escaped `$default` is a literal key, so every
# frame, whatever it looks like, goes through the one template.
TEMPLATE_KEY = "$default"
TEMPLATE_SELECTION = "\\$default"
ACCEPT = '{"statusCode": 200}'  # what the mock integrations of $connect and $disconnect answer
# A frame that is a JSON object with an `action` field naming a route takes that route; any other frame, $default.
ROUTE_SELECTION = "$request.body.action"
CONNECTIONS_ENDPOINT_VARIABLE = "CONNECTIONS_ENDPOINT"  # read by worker/replies.py


class WebSocketIngestApi(Construct):
    """The public entry point. Its integration role may only `sqs:SendMessage` to this queue (and use its key)."""

    # What the worker needs from this flavour (stack.py): an entry point that also replies to the sender
    # (worker/replies.py), and a way out to the @connections API, which has no VPC endpoint.
    worker_handler = "replies.lambda_handler"
    worker_needs_internet = True

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, queues: QueueWithDeadLetter) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.role = send_message_role(self, settings)
        queues.grant_send(self.role)

        send_message = integrations.WebSocketAwsIntegration(
            "SendMessage",
            integration_method="POST",
            integration_uri=(
                f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}:sqs:path/{Aws.ACCOUNT_ID}/{queues.queue.queue_name}"
            ),
            credentials_role=self.role,
            request_parameters=FORM_CONTENT_TYPE,
            request_templates={TEMPLATE_KEY: send_message_template("websocket_request.vtl", settings)},
            template_selection_expression=TEMPLATE_SELECTION,
            # A frame the template cannot take is refused, never passed to SQS unmapped.
            passthrough_behavior=apigwv2.PassthroughBehavior.NEVER,
        )
        accept = dict(request_templates={TEMPLATE_KEY: ACCEPT}, template_selection_expression=TEMPLATE_SELECTION)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=settings.api_name,
            description=settings.description,
            route_selection_expression=ROUTE_SELECTION,
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketMockIntegration("Connect", **accept),
                # API Gateway authorizes a WebSocket client once, on $connect; its frames ride on that connection.
                authorizer=(
                    authorizers.WebSocketIamAuthorizer()
                    if settings.api_auth == "iam"
                    else apigwv2.WebSocketNoneAuthorizer()
                ),
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketMockIntegration("Disconnect", **accept),
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(integration=send_message),
        )
        # One integration for them all (one role, one template): the template tells them apart by $context.routeKey.
        for route_key in settings.websocket_routes:
            self.api.add_route(route_key, integration=send_message)
        self.access_logs = access_log_group(self, settings, queues.key)
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=settings.stage,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=settings.api_rate_limit, burst_limit=settings.api_burst_limit),
            access_log_settings=StageAccessLogs(self.access_logs),
        )
        # WebSocket (and REST) stages log through the region's API Gateway account role; without one the stage
        # cannot be created with access logs.
        self.stage.node.add_dependency(account_logging_role(self))
        self._acknowledge_checks()

        self.url = self.stage.url
        CfnOutput(scope, "WebSocketUrl", value=self.url, description="Connect here (wss://); every frame is a message")
        CfnOutput(scope, "MessagesUrl", value=self.url, description="Send messages here: the WebSocketUrl")
        # WebSocket APIs count frames (MessageCount), not requests, and answer no HTTP status: a frame SQS did not
        # take is an IntegrationError (SQS refused it) or an ExecutionError (API Gateway could not call SQS).
        self.metrics = ApiMetrics(
            requests=self.stage.metric("MessageCount", statistic="Sum", label="Frames (MessageCount)"),
            client_errors=self.stage.metric("ClientError", statistic="Sum", label="ClientError"),
            server_errors=cloudwatch.MathExpression(
                expression="FILL(integration, 0) + FILL(execution, 0)",
                using_metrics={
                    "integration": self.stage.metric("IntegrationError", statistic="Sum"),
                    "execution": self.stage.metric("ExecutionError", statistic="Sum"),
                },
                label="IntegrationError + ExecutionError",
                period=PERIOD,
            ),
            latency=self.stage.metric("IntegrationLatency", statistic="Average", label="IntegrationLatency"),
            failures="Frames were not queued: SQS refused them (IntegrationError) or API Gateway could not call SQS "
            "(ExecutionError); integrationError in the access logs says why.",
        )

    def connect_worker(self, worker: Worker) -> None:
        """Let `worker` post to the connections of this stage, and tell it where (worker/replies.py)."""
        connections = Stack.of(self).format_arn(
            service="execute-api",
            resource=self.api.api_id,
            resource_name=f"{self.stage.stage_name}/POST/@connections/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        policy = iam.Policy(
            self,
            "ReplyPolicy",
            roles=[worker.role],
            statements=[iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[connections])],
        )
        worker.function.add_environment(CONNECTIONS_ENDPOINT_VARIABLE, self.stage.callback_url)
        worker.function.node.add_dependency(policy)  # the first batch may reply as soon as the function exists
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{finding_resource(self, connections)}]",
            "The worker replies to whichever client sent a message; connection ids exist only at run time, so the "
            "resource is every connection of this API's stage, POST (reply) only.",
        )

    def _acknowledge_checks(self) -> None:
        if self.settings.api_auth == "none":
            acknowledge(
                self.api.node.find_child("$connect-Route"),
                "AwsSolutions-APIG4",
                "api_auth=none was chosen when the project was generated: anyone may connect (the stage is "
                "throttled); regenerate with api_auth=iam or add an authorizer to $connect to restrict it.",
            )
        for route_key in ("$disconnect", "$default", *self.settings.websocket_routes):
            acknowledge(
                self.api.node.find_child(f"{route_key}-Route"),
                "AwsSolutions-APIG4",
                f"API Gateway authorizes a WebSocket client on $connect only (api_auth={self.settings.api_auth}); "
                f"{route_key} runs on a connection that has already passed it and takes no authorizer.",
            )
