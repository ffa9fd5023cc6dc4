"""api_auth = iam, locally: what API Gateway does before a request reaches the integration.

1. Authentication: the request must carry a valid Signature Version 4 (service `execute-api`, the API's region),
   made with known credentials, signed within five minutes of now. Locally one caller is known, with the credentials
   `make local` prints (CALLER).
2. Authorization: the caller's policies must allow `execute-api:Invoke` on the method's ARN, decided by the same
   evaluator as every other call (local/policies.py). The local caller's policy is the one the README tells you to
   give your callers: Invoke on this API's POST /messages (WebSocket: $connect).

A refusal is a 403 in the API's own words (`refusal_body`).
"""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .policies import API_ID, Request, identity_decision
from .sqs import ACCOUNT, REGION

CALLER = {"aws_access_key_id": "AKIALOCALCALLER00001", "aws_secret_access_key": "local-caller-secret"}
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/local-caller"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
MAX_SKEW = datetime.timedelta(minutes=5)
TIMESTAMP = "%Y%m%dT%H%M%SZ"

# API Gateway's answers (REST APIs name the problem; HTTP APIs say Forbidden whatever it is).
REST_MESSAGES = {
    "missing": "Missing Authentication Token",
    "unknown key": "The security token included in the request is invalid.",
    "bad signature": "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details.",
    "expired": "Signature expired: the request's X-Amz-Date is more than 5 minutes from now.",
}


def method_arn(stage: str, method: str, path: str = "") -> str:
    """The ARN API Gateway authorizes: <api>/<stage>/<method>/<path> (WebSocket: <api>/<stage>/<route key>)."""
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{stage}/{method}" + (
        f"/{path.lstrip('/')}" if path else ""
    )


def caller_policy(granted: str) -> list[dict[str, Any]]:
    """The local caller's identity policy: Invoke on what the README says to grant (e.g. <api>/*/POST/messages)."""
    return [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": granted}]


def check(method: str, url: str, headers: Mapping[str, str], body: bytes, *, resource: str, granted: str) -> str | None:
    """None when API Gateway lets the request for `resource` (the method's ARN) through; else why not ("missing",
    "bad signature", "unknown key", "expired", "denied"). `granted`: what the local caller's policy allows."""
    lower = {name.lower(): value for name, value in headers.items()}
    if "authorization" not in lower:
        return "missing"
    found = AUTHORIZATION.fullmatch(lower["authorization"].strip())
    if not found:
        return "bad signature"
    if found["key"] != CALLER["aws_access_key_id"]:
        return "unknown key"
    stamp = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, TIMESTAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return "bad signature"
    if abs(datetime.datetime.now(datetime.UTC) - signed_at) > MAX_SKEW:
        return "expired"
    if (found["service"], found["region"], found["date"]) != ("execute-api", REGION, stamp[:8]):
        return "bad signature"
    signed = found["signed"].split(";")
    request = AWSRequest(method, url, data=body, headers={n: v for n, v in headers.items() if n.lower() in signed})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(*CALLER.values()), "execute-api", REGION)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        return "bad signature"
    invoke = Request({"AWS": CALLER_ARN}, "execute-api:Invoke", resource, {"aws:SecureTransport": "true"})
    return None if identity_decision(caller_policy(granted), invoke) == "Allow" else "denied"


def refusal_body(reason: str, *, rest: bool, resource: str) -> dict[str, str]:
    if not rest:
        return {"message": "Forbidden"}
    if reason == "denied":
        return {
            "Message": f"User: {CALLER_ARN} is not authorized to perform: execute-api:Invoke on resource: {resource}"
        }
    return {"message": REST_MESSAGES[reason]}


def sign(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with the local caller's signature added, as an SDK or `curl --aws-sigv4` signs."""
    request = AWSRequest(method, url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(*CALLER.values()), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


def curl_flags() -> str:
    key, secret = CALLER.values()
    return f"--aws-sigv4 'aws:amz:{REGION}:execute-api' --user '{key}:{secret}'"
