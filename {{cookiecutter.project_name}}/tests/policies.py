"""Ask a synthesized resource policy (a key, topic or queue policy) the question AWS asks at run time.

`decide(policy, request)` evaluates one resource-based policy the way AWS's policy evaluation logic does for a
request by a service principal: an explicit Deny wins, else an Allow whose principal, action, resource and every
condition match, else the request is implicitly denied. A condition key missing from the request fails its
condition. Only what this stack's policies use is understood (Allow/Deny; Principal "*", AWS and Service; action and
resource wildcards; StringEquals, StringLike, ArnEquals, ArnLike, Bool); anything else raises, so a new construct
cannot pass a test unexamined.

CloudFormation values are resolved with the pseudo parameters of one imagined deployment (ACCOUNT, REGION, "aws");
`Ref` and `Fn::GetAtt` of a resource stay symbolic ("<Ref Topic>", "<Topic.Arn>"), and requests name resources
the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


def resolve(value: Any, region: str = REGION) -> Any:
    """A CloudFormation value with intrinsics replaced (Ref, Fn::GetAtt, Fn::Join); others raise."""
    if isinstance(value, list):
        return [resolve(item, region) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::Region":
            return region
        return PSEUDO.get(name, f"<Ref {name}>")
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, region)) for part in parts)
    if any(key.startswith("Fn::") for key in value):
        raise NotImplementedError(f"intrinsic not understood: {value}")
    return {key: resolve(item, region) for key, item in value.items()}


@dataclass(frozen=True)
class Request:
    principal: dict[str, str]  # {"Service": "logs.eu-west-1.amazonaws.com"} or {"AWS": "arn:aws:iam::...:root"}
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)  # condition keys, e.g. aws:SourceAccount


def decide(policy: dict[str, Any], request: Request) -> str:
    """ "Allow", "Deny" (an explicit Deny matched) or "ImplicitDeny" (no statement allows the request)."""
    matched = [s["Effect"] for s in resolve(policy)["Statement"] if _applies(s, request)]
    if "Deny" in matched:
        return "Deny"
    return "Allow" if "Allow" in matched else "ImplicitDeny"


def allowed(policy: dict[str, Any], request: Request) -> bool:
    return decide(policy, request) == "Allow"


def _applies(statement: dict[str, Any], request: Request) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    if unknown:
        raise NotImplementedError(f"statement elements not understood: {unknown}")
    return (
        _principal_matches(statement["Principal"], request.principal)
        and any(_like(pattern, request.action, case=False) for pattern in _listed(statement["Action"]))
        and any(_like(pattern, request.resource) for pattern in _listed(statement["Resource"]))
        and all(
            _condition_holds(operator, key, _listed(values), request.context)
            for operator, pairs in statement.get("Condition", {}).items()
            for key, values in pairs.items()
        )
    )


def _principal_matches(principal: Any, caller: dict[str, str]) -> bool:
    if principal == "*":
        return True
    for kind, values in principal.items():
        if kind not in ("AWS", "Service"):
            raise NotImplementedError(f"principal not understood: {principal}")
        for value in _listed(values):
            if kind == "AWS" and value == "*":
                return True
            if kind in caller and (value == caller[kind] or (kind == "AWS" and _same_account(value, caller[kind]))):
                return True
    return False


def _same_account(root: str, caller: str) -> bool:
    """An account root ARN in a resource policy stands for every principal of that account (IAM decides further)."""
    return root.endswith(":root") and root.split(":")[4] == caller.split(":")[4]


def _condition_holds(operator: str, key: str, values: list[str], context: dict[str, str]) -> bool:
    if operator in ("StringNotEquals", "ArnNotEquals"):  # a missing key matches a negated operator (IAM guide)
        return context.get(key) not in values
    if key not in context:
        return False
    actual = context[key]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in values
    if operator in ("StringLike", "ArnLike"):
        return any(_like(value, actual) for value in values)
    if operator == "Bool":
        return any(actual.lower() == str(value).lower() for value in values)
    raise NotImplementedError(f"condition operator not understood: {operator}")


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]
