"""The stack's IAM walls, in front of the local AWS server: every request signed as one of the stack's roles is
decided by the synthesized policies (local/policies.py) before moto sees it, and refused as AWS refuses it.

Each role the emulator plays has local credentials of its own (`credentials_of`): the worker's execution role signs
the worker's calls and the event source mapping's receives and deletes, an API integration's role signs the API's
SendMessage. The emulator's own housekeeping (creating queues, tests looking at them) signs with the admin key
`local` and is not decided. From a request this module reads what IAM reads: the action (the operation, a batch
counted as its single action), the resource's ARN (the queue, topic, table, bucket or object) and the caller.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .policies import API_ID, Authority, Call, Decision

ROLE_KEY_PREFIX = "role-"  # access key id of a role's local credentials: role-<logical id>
SECRET = "local"
SIGNATURE = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "PublishBatch": "Publish",
}
S3_OBJECT_ACTIONS = {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
S3_BUCKET_ACTIONS = {"GET": "ListBucket", "HEAD": "ListBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
# How each service words a refusal: (HTTP status, error code, JSON __type namespace).
REFUSALS = {
    "sqs": (400, "AccessDenied", "com.amazon.coral.service#AccessDeniedException"),
    "sns": (403, "AuthorizationError", None),
    "s3": (403, "AccessDenied", None),
    "execute-api": (403, "AccessDeniedException", None),
}
KEY_REFUSALS = {  # the service could not use the customer key on the caller's behalf
    "sqs": (400, "KMS.AccessDeniedException", "com.amazonaws.sqs#KmsAccessDenied"),
    "sns": (400, "KMSAccessDenied", None),
}
DEFAULT_REFUSAL = (400, "AccessDeniedException", "com.amazon.coral.service#AccessDeniedException")


def credentials_of(role: str) -> dict[str, str]:
    """The local credentials of one of the stack's roles (by logical id), as boto3 takes them."""
    return {"aws_access_key_id": f"{ROLE_KEY_PREFIX}{role}", "aws_secret_access_key": SECRET}


def environment_credentials(role: str) -> dict[str, str]:
    credentials = credentials_of(role)
    return {"AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": SECRET}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @classmethod
    def of(cls, method: str, target: str, headers: Any, body: bytes) -> HttpRequest:
        """From an http.server request: its target (path and query) and its headers, in any case."""
        url = urllib.parse.urlsplit(target)
        return cls(method, url.path, url.query, {name.lower(): value for name, value in headers.items()}, body)


@dataclass(frozen=True)
class Refusal:
    status: int
    body: bytes
    headers: dict[str, str]
    line: str  # one readable line for the person running `make local`


class Walls:
    def __init__(self, template: dict[str, Any], *, account: str, region: str, hints: dict[str, str]) -> None:
        """`hints`: where in the project each role gets its grants, by the logical id's first part (Worker, Api)."""
        self.authority = Authority(template, account=account, region=region)
        self.account, self.hints = account, hints

    def check(self, request: HttpRequest) -> Refusal | None:
        signed = SIGNATURE.search(request.headers.get("authorization", ""))
        if not signed or not signed["key"].startswith(ROLE_KEY_PREFIX):
            return None  # the emulator's own requests, and unsigned ones (moto answers those itself)
        role = signed["key"][len(ROLE_KEY_PREFIX) :]
        service, region = signed["service"], signed["region"]
        action, resource = operation(request, service, region, self.account)
        decision = self.authority.decide(Call(role, f"{service}:{action}", resource, {"aws:SecureTransport": "true"}))
        return None if decision.allowed else self.refusal(decision, service, request)

    def hint(self, role: str) -> str:
        return next((where for prefix, where in self.hints.items() if role.startswith(prefix)), "the stack")

    def refusal(self, decision: Decision, service: str, request: HttpRequest) -> Refusal:
        call = decision.call
        key_refusal = call.action.startswith("kms:") and service != "kms"
        status, code, json_type = (KEY_REFUSALS if key_refusal else REFUSALS).get(service, DEFAULT_REFUSAL)
        session = call.role
        message = (
            f"User: arn:aws:sts::{self.account}:assumed-role/{call.role}/{session} is not authorized to perform: "
            f"{call.action} on resource: {call.resource} {decision.why}"
        )
        line = (
            f"IAM refused {call.action} on {call.resource} to role {call.role} {decision.why}: the grant belongs in "
            f"{self.hint(call.role)}"
        )
        if "x-amz-target" in request.headers:  # JSON protocol (SQS, DynamoDB, ...)
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            if service == "sqs":
                headers["x-amzn-query-error"] = f"{code};Sender"
            body = json.dumps({"__type": json_type or code, "message": message})
        elif service == "execute-api":  # the @connections API: REST-JSON, the code in a header
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
            body = json.dumps({"message": message})
        elif service == "s3":
            headers = {"Content-Type": "application/xml"}
            body = f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message></Error>"
        else:  # query protocol (SNS, SQS's older clients)
            headers = {"Content-Type": "text/xml"}
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
                "</Error><RequestId>local</RequestId></ErrorResponse>"
            )
        return Refusal(status, body.encode("utf-8"), headers, line)


def operation(request: HttpRequest, service: str, region: str, account: str) -> tuple[str, str]:
    """(action without the service prefix, resource ARN) of an AWS API request, as IAM authorizes it."""
    if service == "s3":
        bucket, _, key = urllib.parse.unquote(request.path).lstrip("/").partition("/")
        actions = S3_OBJECT_ACTIONS if key else S3_BUCKET_ACTIONS
        return actions.get(request.method, request.method), f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")
    if service == "execute-api":  # the @connections API: POST (reply), GET or DELETE /<stage>/@connections/<id>
        stage, _, rest = urllib.parse.unquote(request.path).lstrip("/").partition("/")
        return "ManageConnections", f"arn:aws:execute-api:{region}:{account}:{API_ID}/{stage}/{request.method}/{rest}"
    fields: dict[str, Any] = {}
    if "x-amz-target" in request.headers:
        name = request.headers["x-amz-target"].rsplit(".", 1)[-1]
        fields = json.loads(request.body or b"{}")
    else:
        form = urllib.parse.parse_qs(request.body.decode("utf-8") + "&" + request.query, keep_blank_values=True)
        fields = {k: v[0] for k, v in form.items()}
        name = fields.get("Action", request.method)
    name = BATCHES.get(name, name)
    if service == "sqs":
        url = fields.get("QueueUrl") or request.path
        queue = fields.get("QueueName") or urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "*"
        return name, f"arn:aws:sqs:{region}:{account}:{queue}"
    if service == "sns":
        return name, fields.get("TopicArn") or fields.get("TargetArn") or f"arn:aws:sns:{region}:{account}:*"
    if service == "dynamodb":
        table = fields.get("TableName") or next(iter(fields.get("RequestItems", {})), "*")
        return name, f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return name, "*"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
