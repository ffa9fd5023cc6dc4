"""The HTTP API, locally: `POST /messages` through the SQS-SendMessage integration's parameter mapping as synthesized.

Each mapping value is evaluated as API Gateway evaluates it ($request.body, $request.header.*, $context.requestId,
the queue's Ref) and the result is sent to the local SQS, signed as the integration's role (local/walls.py). With
api_auth = iam the caller's SigV4 signature and execute-api:Invoke are checked first (local/sigv4.py), then the
stage's throttle applies.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from . import sigv4
from .assembly import Assembly, role_id
from .serving import JsonRequestHandler, LocalHttpServer, PostMessagesApi, throttle_of
from .sqs import LocalSqs
from .walls import credentials_of

VARIABLE = "LOCAL_API_PORT"


class MissingValue(Exception):
    """A mapping expression has no value in this request (API Gateway then fails the integration)."""


def evaluate(expression: Any, *, body: str, headers: dict[str, str], request_id: str, queue_url: str) -> str:
    """One HTTP API parameter-mapping value, the way API Gateway resolves it for this integration."""
    if isinstance(expression, dict):  # a CloudFormation Ref to the queue: its URL
        return queue_url
    if expression == "$request.body":
        return body
    if match := re.fullmatch(r"\$request\.header\.([\w-]+)", expression):
        wanted = match.group(1).lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
        if value is None:
            raise MissingValue(expression)
        return value
    if expression == "$context.requestId":
        return request_id
    raise ValueError(f"the emulator does not know this mapping expression: {expression}")


class HttpApi(PostMessagesApi):
    name = "HTTP API"

    def __init__(self, assembly: Assembly, sqs: LocalSqs, port: int, *, log: Any = print) -> None:
        integration = assembly.only("AWS::ApiGatewayV2::Integration")
        [route] = [r for _, r in assembly.of_type("AWS::ApiGatewayV2::Route")]
        method, self.path = route["RouteKey"].split(" ", 1)
        self.auth = route.get("AuthorizationType", "NONE")
        mapping: dict[str, Any] = integration["RequestParameters"]
        queue_name = assembly.queue_name(mapping["QueueUrl"])
        credentials = credentials_of(role_id(integration["CredentialsArn"]))  # the integration's role
        self.throttle = throttle = throttle_of(assembly.only("AWS::ApiGatewayV2::Stage")["DefaultRouteSettings"])
        api = self

        class Handler(JsonRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.body()
                body = raw.decode("utf-8", errors="replace")
                if self.path != api.path or method != "POST":
                    return self.answer(404, {"message": "Not Found"})
                if refused := api.authenticate(self, raw):
                    return self.answer(403, sigv4.refusal_body(refused[0], rest=False, resource=refused[1]))
                if not throttle.take():
                    return self.answer(429, {"message": "Too Many Requests"})
                request_id = str(uuid.uuid4())
                headers = dict(self.headers.items())
                try:
                    parameters = {
                        name: evaluate(value, body=body, headers=headers, request_id=request_id, queue_url="")
                        for name, value in mapping.items()
                        if name != "QueueUrl"
                    }
                except MissingValue as missing:
                    log(f"http api: request {request_id} not queued: the mapping has no value for {missing}")
                    return self.answer(500, {"message": "Internal Server Error"})
                answer = sqs.send(queue_name, parameters, {"Accept": "application/json"}, credentials)
                self.answer(answer.status, answer.body, {"apigw-requestid": request_id})

            def do_GET(self) -> None:  # noqa: N802
                self.answer(404, {"message": "Not Found"})

        self.server = LocalHttpServer(Handler, port, variable=VARIABLE)
        self.url = f"{self.server.url}{self.path}"
