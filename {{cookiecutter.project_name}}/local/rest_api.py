"""The REST API, locally: `POST /messages` through the method and its AWS integration as synthesized.

In API Gateway's order: with api_auth = iam the caller's SigV4 signature and execute-api:Invoke (403,
local/sigv4.py), the stage throttle (429), the Content-Type against the request templates (passthrough
NEVER: 415), the request validator (required headers; the body against the model's JSON schema, checked with
jsonschema's draft 4 validator: 400, the BAD_REQUEST_BODY gateway response as synthesized), the request template
rendered into SQS's form and POSTed to the local SQS with the integration's headers, then SQS's status picks the
integration response whose template renders the client's answer. The POST to SQS is signed as the integration's
role, and decided by its policies (local/walls.py).

The validation errors name the same problems as API Gateway's, in jsonschema's words rather than AWS's: locally
`[5 is not of type 'string' (at /idempotency_key)]`, where API Gateway says
`[instance type (integer) does not match any allowed primitive type (allowed: ["string"])]`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import jsonschema

from . import sigv4, vtl
from .assembly import Assembly, role_id
from .serving import JsonRequestHandler, LocalHttpServer, PostMessagesApi, throttle_of
from .sqs import LocalSqs
from .walls import credentials_of

VARIABLE = "LOCAL_API_PORT"
DEFAULT_CONTENT_TYPE = "application/json"  # what API Gateway assumes when a request names none
INVALID_BODY = "Invalid request body"  # API Gateway's $context.error.message for BAD_REQUEST_BODY


class RestApi(PostMessagesApi):
    name = "REST API"

    def __init__(self, assembly: Assembly, sqs: LocalSqs, port: int, *, log: Any = print) -> None:
        [(method_id, method)] = [
            (i, m) for i, m in assembly.of_type("AWS::ApiGateway::Method") if m["HttpMethod"] == "POST"
        ]
        resource = assembly.properties(method["ResourceId"]["Ref"])
        self.path = "/" + resource["PathPart"]
        self.auth = method.get("AuthorizationType", "NONE")
        integration = method["Integration"]
        queue_name = assembly.integration_queue_name(integration["Uri"])
        request_templates: dict[str, str] = integration["RequestTemplates"]
        headers_to_sqs = vtl.integration_headers(integration.get("RequestParameters", {}))
        credentials = credentials_of(role_id(integration["Credentials"]))  # the integration's role
        responses = integration["IntegrationResponses"]
        validator = assembly.properties(method["RequestValidatorId"]["Ref"]) if "RequestValidatorId" in method else {}
        required_headers = [
            name.removeprefix("method.request.header.")
            for name, required in method.get("RequestParameters", {}).items()
            if required and name.startswith("method.request.header.")
        ]
        models = {
            content_type: assembly.properties(model["Ref"])["Schema"]
            for content_type, model in method.get("RequestModels", {}).items()
        }
        gateway_responses = {r["ResponseType"]: r for _, r in assembly.of_type("AWS::ApiGateway::GatewayResponse")}
        bad_body = gateway_responses.get("BAD_REQUEST_BODY", {})
        [stage] = [s for _, s in assembly.of_type("AWS::ApiGateway::Stage")]
        self.stage = stage["StageName"]
        self.throttle = throttle = throttle_of(stage["MethodSettings"][0])
        api = self

        def refusal(
            headers: dict[str, str], body: str, content_type: str, request_id: str
        ) -> tuple[int, Any, dict[str, str]] | None:
            """What API Gateway answers before the integration runs, or None when the request goes on."""
            if content_type not in request_templates:
                return 415, {"message": "Unsupported Media Type"}, {}
            if validator.get("ValidateRequestParameters"):
                missing = [h for h in required_headers if not any(k.lower() == h.lower() for k in headers)]
                if missing:
                    return 400, {"message": f"Missing required request parameters: [{', '.join(missing)}]"}, {}
            if validator.get("ValidateRequestBody") and content_type in models:
                problems = validation_errors(models[content_type], body)
                if problems:
                    return gateway_response(bad_body, 400, INVALID_BODY, problems, request_id)
            return None

        class Handler(JsonRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.body()
                if self.path != f"/{api.stage}{api.path}" and self.path != api.path:
                    return self.answer(403, {"message": "Missing Authentication Token"})
                if refused := api.authenticate(self, raw):
                    return self.answer(403, sigv4.refusal_body(refused[0], rest=True, resource=refused[1]))
                if not throttle.take():
                    return self.answer(429, {"message": "Too Many Requests"})
                headers = dict(self.headers.items())
                content_type = (self.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE).split(";")[0].strip().lower()
                body = raw.decode("utf-8", errors="replace")
                request_id = str(uuid.uuid4())
                if refused := refusal(headers, body, content_type, request_id):
                    return self.answer(*refused)
                context = vtl.rest_context(request_id, stage=api.stage, resource_path=api.path)
                form = vtl.render(request_templates[content_type], body, context=context, headers=headers)
                sqs_answer = sqs.post(queue_name, form, headers_to_sqs, credentials)
                response = _select(responses, sqs_answer.status)
                context = vtl.rest_context(request_id, stage=api.stage, resource_path=api.path)
                template = response.get("ResponseTemplates", {}).get(DEFAULT_CONTENT_TYPE, "")
                rendered = vtl.render(template, sqs_answer.body, context=context) if template else sqs_answer.body
                status = int(context["responseOverride"].get("status", response["StatusCode"]))
                if sqs_answer.status >= 300:
                    log(f"rest api: request {request_id}: SQS answered {sqs_answer.status} {sqs_answer.body[:300]}")
                self.answer(status, rendered, {"x-amzn-RequestId": request_id})

            def do_GET(self) -> None:  # noqa: N802
                self.answer(403, {"message": "Missing Authentication Token"})

        self.server = LocalHttpServer(Handler, port, variable=VARIABLE)
        self.url = f"{self.server.url}/{self.stage}{self.path}"


def _select(responses: list[dict[str, Any]], status: int) -> dict[str, Any]:
    """The integration response whose SelectionPattern matches SQS's status code; the one without a pattern else."""
    for response in responses:
        pattern = response.get("SelectionPattern")
        if pattern and re.fullmatch(pattern, str(status)):
            return response
    [default] = [r for r in responses if not r.get("SelectionPattern")]
    return default


def validation_errors(schema: dict[str, Any], body: str) -> str:
    """The problems with a body as API Gateway's $context.error.validationErrorString lists them (`[a, b]`), in
    jsonschema's words, each with where it is; "" when the body matches the schema. Draft 4 with no format checker:
    `format` is not enforced, as in the worker (worker/schema.py), so what passes here passes there."""
    try:
        document = json.loads(body)
    except ValueError as error:
        return f"[Invalid JSON: {error}]"
    problems = [
        f"{error.message} (at /{'/'.join(map(str, error.path))})" if error.path else error.message
        for error in jsonschema.Draft4Validator(schema).iter_errors(document)
    ]
    return f"[{', '.join(problems)}]" if problems else ""


def gateway_response(
    response: dict[str, Any], default_status: int, message: str, validation_errors: str, request_id: str
) -> tuple[int, Any, dict[str, str]]:
    """A gateway response as synthesized: its status, its headers, and its template with the $context variables
    substituted (not VTL, as in API Gateway); API Gateway's default body when the API does not customize it."""
    template = response.get("ResponseTemplates", {}).get(DEFAULT_CONTENT_TYPE)
    headers = {
        name.removeprefix("gatewayresponse.header."): str(value).strip("'")
        for name, value in response.get("ResponseParameters", {}).items()
    }
    status = int(response.get("StatusCode", default_status))
    if template is None:
        return status, {"message": message}, headers
    in_quotes = {  # a value inside a JSON string of the template: escaped as JSON
        "$context.error.message": message,
        "$context.error.validationErrorString": validation_errors,
        "$context.requestId": request_id,
        "$context.extendedRequestId": request_id,
    }
    variables = {name: json.dumps(value)[1:-1] for name, value in in_quotes.items()}
    variables["$context.error.messageString"] = json.dumps(message)  # quoted by API Gateway itself
    body = re.sub(r"\$context(\.\w+)+", lambda m: variables.get(m.group(0), m.group(0)), template)
    return status, body, headers
