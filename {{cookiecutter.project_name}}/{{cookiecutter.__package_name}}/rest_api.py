"""REST API: `POST /messages` puts the JSON object it receives, byte for byte, on the queue and answers 202.

API Gateway calls SQS `SendMessage` itself (an AWS service integration, no Lambda in the request path): the VTL
templates in `mapping/` turn the request into a form-encoded SQS query and SQS's answer into `{"messageId": ...}`.
Before that, the gateway checks the body against `schemas/message.json` and refuses a body that does not match it
(or is not JSON) with 400, naming the problem: such a request never reaches the queue. API Gateway models are JSON
Schema draft 4 only, so the synth refuses a schema API Gateway would refuse or read otherwise than its author.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from .access_logs import REST_ROUTE_FIELDS, access_log_format, access_log_group
from .checks import acknowledge
from .encryption import log_group
from .monitoring import ApiMetrics
from .queue import QueueWithDeadLetter
from .service_integration import (
    FORM_CONTENT_TYPE,
    account_logging_role,
    mapping_template,
    send_message_role,
    send_message_template,
)
from .settings import Settings
from .worker import Worker

MESSAGES_PATH = "/messages"
JSON = "application/json"
GROUP_ID_HEADER = "X-Message-Group-Id"  # FIFO only: the caller picks the message group

# SQS's status code picks the integration response (the patterns do not overlap):
#   2xx -> 202, the default;
#   400 -> 400 when SQS refused the message itself (too large, an invalid group id): the client can fix that.
#          mapping/rest_refused.vtl reads SQS's error code and answers 500 for SQS's other 400s (KMS, throttling);
#   other 4xx -> 500: SQS refused what this API sent (403: a permission or key problem on our side);
#   5xx -> 502: SQS itself failed.
SQS_REFUSED_THE_MESSAGE = "400"
SQS_CLIENT_ERROR = r"4(0[1-9]|[1-9][0-9])"
SQS_SERVER_ERROR = r"5\d{2}"


# The message schema the user edits (draft 4, the version API Gateway models use), read at synth time.
MESSAGE_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "message.json"
DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# Keywords of later drafts that change what a schema admits. A draft 4 validator (API Gateway's, the worker's)
# ignores a keyword it does not know, so a schema using one would admit what its author meant to refuse.
LATER_DRAFT_KEYWORDS = {
    "const": 'draft 4 has no "const": write "enum": [value]',
    "contains": 'draft 4 has no "contains"',
    "propertyNames": 'draft 4 has no "propertyNames"',
    "if": 'draft 4 has no "if"/"then"/"else": combine "anyOf", "allOf" and "not"',
    "then": 'draft 4 has no "if"/"then"/"else": combine "anyOf", "allOf" and "not"',
    "else": 'draft 4 has no "if"/"then"/"else": combine "anyOf", "allOf" and "not"',
    "dependentRequired": 'draft 4 spells it "dependencies"',
    "dependentSchemas": 'draft 4 spells it "dependencies"',
    "prefixItems": 'draft 4 spells it "items": [...]',
    "unevaluatedProperties": 'draft 4 has no "unevaluatedProperties": use "additionalProperties"',
    "unevaluatedItems": 'draft 4 has no "unevaluatedItems": use "additionalItems"',
    "minContains": 'draft 4 has no "minContains"',
    "maxContains": 'draft 4 has no "maxContains"',
    "$defs": 'draft 4 spells it "definitions"',
    "$id": 'draft 4 spells it "id"',
    "$anchor": 'draft 4 has no "$anchor"',
    "$dynamicRef": 'draft 4 has no "$dynamicRef"',
    "$recursiveRef": 'draft 4 has no "$recursiveRef"',
}
# Where draft 4 keeps subschemas: one schema, a list of them, or a map of names to them.
ONE_SUBSCHEMA = ("additionalItems", "additionalProperties", "items", "not")
LIST_OF_SUBSCHEMAS = ("allOf", "anyOf", "oneOf", "items")
MAP_OF_SUBSCHEMAS = ("definitions", "dependencies", "patternProperties", "properties")
# The body of API Gateway's 400 for a body the model refuses (BAD_REQUEST_BODY). Not VTL: API Gateway only
# substitutes the $context variables. messageString is "Invalid request body", quoted; validationErrorString lists
# the problems, e.g. [object has missing required properties (["id"])], escaped by API Gateway inside the quotes.
BAD_REQUEST_BODY = (
    '{"message": $context.error.messageString, "validationErrors": "$context.error.validationErrorString", '
    '"requestId": "$context.requestId"}'
)


class MessageSchemaError(ValueError):
    """schemas/message.json is not a schema API Gateway takes as its author meant it; the message says why."""


def message_schema(path: Path = MESSAGE_SCHEMA) -> dict[str, Any]:
    """schemas/message.json as written, `$schema`, descriptions and all (apigw.JsonSchema takes no raw document,
    hence the L1 CfnModel). API Gateway also refuses a body that is not JSON at all. Checked here, at synth, rather
    than by CloudFormation halfway through a deploy: MessageSchemaError naming the file and each problem."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise MessageSchemaError(f"{path} is not JSON: {error}") from None
    problems = draft_4_problems(schema)
    if problems:
        raise MessageSchemaError(
            f"{path} is not a JSON Schema draft 4 document, the only draft API Gateway models take:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
    return schema


def draft_4_problems(schema: Any) -> list[str]:
    """Why API Gateway would refuse `schema` as a model, or read it otherwise than its author: a `$schema` other than
    draft 4, what the draft 4 meta-schema refuses (e.g. a numeric `exclusiveMinimum`: a boolean in draft 4), the
    keywords of later drafts, and a pattern the worker cannot compile. Each says where it is, as a JSON pointer."""
    problems = []
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    if declared is not None and str(declared).rstrip("#") != DRAFT_4.rstrip("#"):
        problems.append(f'"$schema" is {declared!r}: API Gateway models are draft 4 ("$schema": "{DRAFT_4}")')
    meta_schema = jsonschema.Draft4Validator(jsonschema.Draft4Validator.META_SCHEMA)
    for error in sorted(meta_schema.iter_errors(schema), key=lambda e: [str(part) for part in e.absolute_path]):
        keyword = error.absolute_path[-1] if error.absolute_path else None
        hint = ""
        if keyword in ("exclusiveMinimum", "exclusiveMaximum") and error.validator == "type":
            bound = "minimum" if keyword == "exclusiveMinimum" else "maximum"
            hint = f' (a boolean in draft 4: write "{bound}": {error.instance}, "{keyword}": true)'
        problems.append(f"{_pointer(error.absolute_path)}: {error.message}{hint}")
    for where, subschema in _subschemas(schema, ()):
        for keyword in sorted(LATER_DRAFT_KEYWORDS.keys() & subschema.keys()):
            problems.append(f"{_pointer((*where, keyword))}: {LATER_DRAFT_KEYWORDS[keyword]}")
        # The worker compiles the schema with Python's `re`; API Gateway's (Java) regular expressions take more,
        # e.g. `\p{L}`: a pattern only Java reads would stop the worker at its cold start.
        patterns = {("pattern",): subschema.get("pattern")}
        if isinstance(subschema.get("patternProperties"), dict):
            patterns |= {("patternProperties", key): key for key in subschema["patternProperties"]}
        for at, pattern in patterns.items():
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as error:
                    problems.append(f"{_pointer((*where, *at))}: Python's `re` (the worker's) cannot read it: {error}")
    return problems


def _subschemas(schema: Any, where: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(where, schema) for `schema` and every schema inside it, as draft 4 nests them."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for keyword in ONE_SUBSCHEMA:
        yield from _subschemas(schema.get(keyword), (*where, keyword))
    for keyword in LIST_OF_SUBSCHEMAS:
        if isinstance(schema.get(keyword), list):
            for index, item in enumerate(schema[keyword]):
                yield from _subschemas(item, (*where, keyword, index))
    for keyword in MAP_OF_SUBSCHEMAS:
        if isinstance(schema.get(keyword), dict):
            for name, item in schema[keyword].items():
                yield from _subschemas(item, (*where, keyword, name))


def _pointer(path: Any) -> str:
    return "#" + "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


class RestIngestApi(Construct):
    """The public entry point. Its integration role may only `sqs:SendMessage` to this queue (and use its key)."""

    # What the worker needs from this flavour (stack.py): the plain batch handler, no internet access.
    worker_handler = "handler.lambda_handler"
    worker_needs_internet = False

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, queues: QueueWithDeadLetter) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = access_log_group(self, settings, queues.key)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=settings.api_name,
            description=settings.description,
            # Callers are other services, usually in the same region: no CloudFront distribution in front.
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution and access logs go through the region's API Gateway account role (made below).
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=access_log_format(REST_ROUTE_FIELDS),
                tracing_enabled=True,
                # Execution logs show SQS's own error when a send fails; request bodies stay out of them.
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
            ),
        )
        self.api.deployment_stage.node.add_dependency(account_logging_role(self))
        # API Gateway would create the execution log group on the stage's first request, outside the stack: kept
        # forever and left behind by `make destroy`. Made here first, it follows the stage's retention and key.
        self.execution_logs = log_group(
            self,
            "ExecutionLogs",
            settings=settings,
            name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{settings.stage}",
            key=queues.key,
            name_pattern=f"API-Gateway-Execution-Logs_*/{settings.stage}",
        )
        self.api.deployment_stage.node.add_dependency(self.execution_logs)
        self.role = send_message_role(self, settings)
        queues.grant_send(self.role)

        self.model = self._message_model()
        self.validator = self.api.add_request_validator(
            "Validator",
            validate_request_body=True,
            validate_request_parameters=True,  # the group id header, when the queue is FIFO
        )
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={JSON: BAD_REQUEST_BODY},
        )
        self.method = self.api.root.add_resource(MESSAGES_PATH.lstrip("/")).add_method(
            "POST",
            self._send_message_integration(settings, queues),
            authorization_type=(
                apigw.AuthorizationType.IAM if settings.api_auth == "iam" else apigw.AuthorizationType.NONE
            ),
            request_validator=self.validator,
            request_models={JSON: apigw.Model.from_model_name(self, "MessageModel", self.model.ref)},
            request_parameters={f"method.request.header.{GROUP_ID_HEADER}": True} if settings.fifo else None,
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("202", "400", "500", "502")],
        )
        self.url = self.api.url_for_path(MESSAGES_PATH)
        CfnOutput(scope, "MessagesUrl", value=self.url, description="POST messages here")
        self.metrics = ApiMetrics.of(self.api)
        self._acknowledge_checks(settings)

    def connect_worker(self, worker: Worker) -> None:
        """Nothing to connect: this API does not hear back from the worker."""

    def _message_model(self) -> apigw.CfnModel:
        """The model the validator checks bodies against; a changed schema makes a new deployment (as the L2 Model
        would): a stage serves the models of its deployment."""
        schema = message_schema()
        model = apigw.CfnModel(self, "Message", rest_api_id=self.api.rest_api_id, content_type=JSON, schema=schema)
        self.api.latest_deployment.node.add_dependency(model)
        self.api.latest_deployment.add_to_logical_id({"messageSchema": schema})
        return model

    def _send_message_integration(self, settings: Settings, queues: QueueWithDeadLetter) -> apigw.AwsIntegration:
        error = {JSON: mapping_template("rest_error.vtl")}
        # Like the request template, the 400 template is told whether the queue is FIFO (to mention the group id).
        fifo = "true" if settings.fifo else "false"
        refused = {JSON: f"#set($fifo = {fifo})##\n" + mapping_template("rest_refused.vtl")}
        return apigw.AwsIntegration(
            service="sqs",
            path=f"{Stack.of(self).account}/{queues.queue.queue_name}",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.role,
                request_parameters={
                    **FORM_CONTENT_TYPE,
                    # SQS answers in JSON rather than XML, so the response template can read the message id.
                    "integration.request.header.Accept": f"'{JSON}'",
                },
                request_templates={JSON: send_message_template("rest_request.vtl", settings)},
                # A request with another Content-Type is refused (415), never forwarded untransformed.
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="202", response_templates={JSON: mapping_template("rest_response.vtl")}
                    ),
                    apigw.IntegrationResponse(
                        status_code="400", selection_pattern=SQS_REFUSED_THE_MESSAGE, response_templates=refused
                    ),
                    apigw.IntegrationResponse(
                        status_code="500", selection_pattern=SQS_CLIENT_ERROR, response_templates=error
                    ),
                    apigw.IntegrationResponse(
                        status_code="502", selection_pattern=SQS_SERVER_ERROR, response_templates=error
                    ),
                ],
            ),
        )

    def _acknowledge_checks(self, settings: Settings) -> None:
        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG3",
            "No AWS WAF web ACL: it costs per ACL and rule and needs rules for your traffic. Add one with "
            "wafv2.CfnWebACLAssociation(resource_arn=api.deployment_stage.stage_arn, ...) before exposing the API.",
        )
        if settings.api_auth == "iam":
            auth_reason = (
                "api_auth=iam: callers sign requests with SigV4 and need execute-api:Invoke on this method; "
                "IAM is the authorizer, callers are services rather than Cognito users."
            )
        else:
            auth_reason = (
                "api_auth=none was chosen when the project was generated: the endpoint is open by design "
                "(throttled, validated); regenerate with api_auth=iam or add an authorizer to restrict it."
            )
        acknowledge(self.method, "AwsSolutions-COG4", auth_reason)
        if settings.api_auth == "none":
            acknowledge(self.method, "AwsSolutions-APIG4", auth_reason)
