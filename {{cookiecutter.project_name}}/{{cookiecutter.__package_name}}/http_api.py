"""HTTP API: `POST /messages` sends the request body, byte for byte, to the queue (no Lambda in the request path)."""

from __future__ import annotations

from aws_cdk import CfnOutput
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .access_logs import StageAccessLogs, access_log_group
from .checks import acknowledge
from .monitoring import ApiMetrics
from .queue import QueueWithDeadLetter
from .settings import Settings
from .worker import Worker

MESSAGES_PATH = "/messages"
GROUP_ID_HEADER = "x-message-group-id"  # FIFO only: the caller picks the message group


def send_message_mapping(settings: Settings, queue: sqs.IQueue) -> apigwv2.ParameterMapping:
    """SQS-SendMessage parameters. The CDK default would send `$request.body.MessageBody`; we send the whole body."""
    mapping = apigwv2.ParameterMapping().custom("QueueUrl", queue.queue_url).custom("MessageBody", "$request.body")
    if settings.fifo:
        mapping = mapping.custom("MessageGroupId", f"$request.header.{GROUP_ID_HEADER}").custom(
            "MessageDeduplicationId", "$context.requestId"
        )
    return mapping


class HttpIngestApi(Construct):
    """The public entry point. Its integration role may only `sqs:SendMessage` to this queue (and use its key)."""

    # What the worker needs from this flavour (stack.py): the plain batch handler, no internet access.
    worker_handler = "handler.lambda_handler"
    worker_needs_internet = False

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, queues: QueueWithDeadLetter) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=settings.api_name,
            description=settings.description,
            create_default_stage=False,
        )
        self.access_logs = access_log_group(self, settings, queues.key)
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=settings.api_rate_limit, burst_limit=settings.api_burst_limit),
            access_log_settings=StageAccessLogs(self.access_logs),
        )
        [route] = self.api.add_routes(
            path=MESSAGES_PATH,
            methods=[apigwv2.HttpMethod.POST],
            integration=integrations.HttpSqsIntegration(
                "SendMessage", queue=queues.queue, parameter_mapping=send_message_mapping(settings, queues.queue)
            ),
            authorizer=authorizers.HttpIamAuthorizer() if settings.api_auth == "iam" else apigwv2.HttpNoneAuthorizer(),
        )
        if settings.api_auth == "none":
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "api_auth=none was chosen when the project was generated: the endpoint is open by design (the stage "
                "is throttled); regenerate with api_auth=iam or add an authorizer to the route to restrict it.",
            )
        # The integration grants sqs:SendMessage to its own role; a customer key needs its share too.
        queues.grant_key_for_send(route.node.find_child("InvokeRole"))
        self.url = f"{self.stage.url}{MESSAGES_PATH.lstrip('/')}"
        CfnOutput(scope, "MessagesUrl", value=self.url, description="POST messages here")
        self.metrics = ApiMetrics.of(self.api)

    def connect_worker(self, worker: Worker) -> None:
        """Nothing to connect: this API does not hear back from the worker."""
