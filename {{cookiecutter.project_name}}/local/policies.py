"""Ask the synthesized stack the question AWS asks at run time: may this principal do this action on this resource?

One evaluator for the tests and for `make local`:
- `decide(policy, request)` evaluates one policy (a key, topic or queue policy) for a request, as AWS's policy
  evaluation logic does: an explicit Deny wins, else an Allow whose principal, action, resource and every condition
  match, else the request is implicitly denied.
- `Authority(template).decide(call)` decides a call by one of the stack's roles (the worker's, an API integration's)
  with everything that applies in one account: the role's identity policies, the resource's own policy (queue,
  topic, key, table) and, for a call that makes the service use a customer key, the key policy too. `make local`
  asks it about every AWS call the worker and the API make (local/walls.py).

Only what this stack's policies use is understood (Allow/Deny; Principal "*", AWS and Service; Action and Resource
with wildcards; the condition operators and keys below). Anything else raises when the policies are read, so a new
construct cannot pass a test, or a local run, unexamined.

CloudFormation values are resolved with the pseudo parameters of one imagined deployment (ACCOUNT, REGION, "aws");
by default `Ref` and `Fn::GetAtt` of a resource stay symbolic ("<Ref Topic>", "<Topic.Arn>"), and requests name
resources the same way; `Authority` resolves them to ARNs (`arn_of`) or to the local resources' own values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike"}
OPERATORS |= {"ArnNotLike", "Bool"}
NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
CONDITION_KEYS = {"aws:SecureTransport", "aws:PrincipalArn", "aws:PrincipalAccount", "aws:SourceArn"}
CONDITION_KEYS |= {"aws:SourceAccount", "kms:ViaService", "kms:CallerAccount"}
CONDITION_KEY_PREFIXES = ("kms:EncryptionContext:",)
STATEMENT_ELEMENTS = {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
API_ID = "local"  # what a Ref to the stack's API gives in `arn_of` (and in the local API's ARNs)

# (logical id, attribute or None for Ref) -> the value; the default keeps them symbolic.
Reference = Callable[[str, "str | None"], str]


def symbolic(logical_id: str, attribute: str | None) -> str:
    return f"<Ref {logical_id}>" if attribute is None else f"<{logical_id}.{attribute}>"


def resolve(
    value: Any, region: str = REGION, *, pseudo: dict[str, str] | None = None, reference: Reference = symbolic
) -> Any:
    """A CloudFormation value with intrinsics replaced (Ref, Fn::GetAtt, Fn::Join); others raise."""
    pseudo = (pseudo or PSEUDO) | {"AWS::Region": region}
    if isinstance(value, list):
        return [resolve(item, region, pseudo=pseudo, reference=reference) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        return pseudo[name] if name in pseudo else reference(name, None)
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return reference(logical_id, attribute)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, region, pseudo=pseudo, reference=reference)) for part in parts)
    if any(key.startswith("Fn::") for key in value):
        raise NotImplementedError(f"intrinsic not understood: {value}")
    return {key: resolve(item, region, pseudo=pseudo, reference=reference) for key, item in value.items()}


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


def identity_decision(statements: list[dict[str, Any]], request: Request) -> str:
    """ "Allow", "Deny" or "ImplicitDeny" of a principal's own (identity) policy statements for its request."""
    matched = [s["Effect"] for s in statements if _applies(s, request, identity=True)]
    return "Deny" if "Deny" in matched else "Allow" if "Allow" in matched else "ImplicitDeny"


def allowed(policy: dict[str, Any], request: Request) -> bool:
    return decide(policy, request) == "Allow"


def check_understood(statements: list[dict[str, Any]]) -> None:
    """Raise on any element, operator or condition key this evaluator does not know (instead of ignoring it)."""
    for statement in statements:
        unknown = set(statement) - STATEMENT_ELEMENTS
        if unknown:
            raise NotImplementedError(f"statement elements not understood: {sorted(unknown)} in {statement}")
        for operator, pairs in statement.get("Condition", {}).items():
            if operator not in OPERATORS:
                raise NotImplementedError(f"condition operator not understood: {operator}")
            for key in pairs:
                if key not in CONDITION_KEYS and not key.startswith(CONDITION_KEY_PREFIXES):
                    raise NotImplementedError(f"condition key not understood: {key}")


def _applies(statement: dict[str, Any], request: Request, *, identity: bool = False) -> bool:
    """Does the statement cover the request? An identity policy's statements have no Principal: the caller's."""
    check_understood([statement])
    return (identity or _principal_match(statement["Principal"], request.principal) is not None) and _action_matches(
        statement, request
    )


def _action_matches(statement: dict[str, Any], request: Request) -> bool:
    return (
        any(_like(pattern, request.action, case=False) for pattern in _listed(statement["Action"]))
        and any(_like(pattern, request.resource) for pattern in _listed(statement["Resource"]))
        and all(
            _condition_holds(operator, key, [str(v) for v in _listed(values)], request.context)
            for operator, pairs in statement.get("Condition", {}).items()
            for key, values in pairs.items()
        )
    )


def _principal_match(principal: Any, caller: dict[str, str]) -> str | None:
    """ "named" when the statement names the caller (or everyone), "account" when it names the caller's account
    (the account's IAM policies decide further), None when it does not apply."""
    if principal == "*":
        return "named"
    found = None
    for kind, values in principal.items():
        if kind not in ("AWS", "Service"):
            raise NotImplementedError(f"principal not understood: {principal}")
        for value in _listed(values):
            if kind == "AWS" and value == "*":
                return "named"
            if kind in caller and value == caller[kind]:
                return "named"
            if kind == "AWS" and "AWS" in caller and _same_account(value, caller["AWS"]):
                found = "account"
    return found


def _same_account(root: str, caller: str) -> bool:
    """An account root ARN in a resource policy stands for every principal of that account (IAM decides further)."""
    return root.endswith(":root") and root.split(":")[4] == caller.split(":")[4]


def _condition_holds(operator: str, key: str, values: list[str], context: dict[str, str]) -> bool:
    if operator in NEGATED:  # a missing key matches a negated operator (IAM guide)
        if key not in context:
            return True
        return not _condition_holds(operator.replace("Not", ""), key, values, context)
    if key not in context:
        return False
    actual = context[key]
    if operator == "StringEquals":
        return actual in values
    if operator in ("StringLike", "ArnLike", "ArnEquals"):  # ArnEquals and ArnLike both take wildcards (IAM guide)
        return any(_like(value, actual) for value in values)
    if operator == "Bool":
        return any(actual.lower() == value.lower() for value in values)
    raise NotImplementedError(f"condition operator not understood: {operator}")


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- a call by one of the stack's roles, decided with every policy that applies ----------------------------------


def arn_of(template: dict[str, Any], account: str, region: str) -> Reference:
    """What Ref and Fn::GetAtt of the stack's resources give once deployed, for the resources whose policies name
    them (roles, queues, topics, tables, keys); others stay symbolic. A role's name stands in for CloudFormation's
    generated one."""
    resources = template["Resources"]

    def reference(logical_id: str, attribute: str | None) -> str:
        resource = resources.get(logical_id, {})
        kind, properties = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            name = properties["QueueName"]
            return (
                f"https://sqs.{region}.amazonaws.com/{account}/{name}"
                if attribute is None
                else (f"arn:aws:sqs:{region}:{account}:{name}")
            )
        if kind == "AWS::SNS::Topic" and attribute in (None, "TopicArn"):
            return f"arn:aws:sns:{region}:{account}:{properties['TopicName']}"
        if kind == "AWS::DynamoDB::Table":
            name = properties["TableName"]
            return name if attribute is None else f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return f"arn:aws:kms:{region}:{account}:key/{logical_id}"
        if kind in ("AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi") and attribute is None:
            return API_ID
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{account}:role/{logical_id}"
        return symbolic(logical_id, attribute)

    return reference


@dataclass(frozen=True)
class Call:
    """An AWS API call made with one of the stack's roles: e.g. ("WorkerRole...", "sqs:SendMessage", queue ARN)."""

    role: str  # the role's logical id
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    why: str  # AWS's words: "because no identity-based policy allows the sqs:SendMessage action", ...
    call: Call
    principal_arn: str


def _key_id(reference: Any, resources: dict[str, Any]) -> str | None:
    """The logical id of the stack's own KMS key a Ref or Fn::GetAtt names, else None."""
    if not isinstance(reference, dict):
        return None
    logical_id = reference.get("Ref") or (reference.get("Fn::GetAtt") or [None])[0]
    return logical_id if resources.get(logical_id, {}).get("Type") == "AWS::KMS::Key" else None


# Calls that make the service use the resource's KMS key on the caller's behalf, and the key actions each needs
# (SQS and SNS developer guides, "Key management"). DynamoDB uses the grant it creates with the table instead.
KEY_ACTIONS = {
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
}


class Authority:
    """Every policy of one synthesized stack, read once: identity policies by role, resource policies and keys by
    the resource's ARN."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        account: str = ACCOUNT,
        region: str = REGION,
        reference: Reference | None = None,
    ) -> None:
        self.account, self.region = account, region
        self.reference = reference or arn_of(template, account, region)
        pseudo = PSEUDO | {"AWS::AccountId": account, "AWS::Region": region}

        def value(v: Any) -> Any:
            return resolve(v, region, pseudo=pseudo, reference=self.reference)

        resources = template["Resources"]
        self.identity: dict[str, list[dict[str, Any]]] = {}
        self.managed: set[str] = set()  # roles with AWS managed policies: their calls cannot be decided offline
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                properties = resource.get("Properties", {})
                if properties.get("ManagedPolicyArns"):
                    self.managed.add(logical_id)
                inline = [p["PolicyDocument"] for p in properties.get("Policies", [])]
                self.identity[logical_id] = [s for d in inline for s in value(d)["Statement"]]
        for resource in resources.values():
            if resource["Type"] == "AWS::IAM::Policy":
                statements = value(resource["Properties"]["PolicyDocument"])["Statement"]
                for role in resource["Properties"].get("Roles", []):
                    self.identity.setdefault(role["Ref"], []).extend(statements)
        # The resource's ARN -> its own policy's statements, and the customer key (ARN) that encrypts it.
        self.policies: dict[str, list[dict[str, Any]]] = {}
        self.keys: dict[str, str] = {}
        arn = {}
        for logical_id, resource in resources.items():
            kind, properties = resource["Type"], resource.get("Properties", {})
            attribute = {"AWS::SNS::Topic": None, "AWS::SQS::Queue": "Arn", "AWS::DynamoDB::Table": "Arn"}
            if kind == "AWS::KMS::Key":
                arn[logical_id] = self.reference(logical_id, "Arn")
                self.policies[arn[logical_id]] = value(properties["KeyPolicy"])["Statement"]
            elif kind in attribute:
                arn[logical_id] = self.reference(logical_id, attribute[kind])
                key = properties.get("KmsMasterKeyId") or properties.get("SSESpecification", {}).get("KMSMasterKeyId")
                if _key_id(key, resources):  # the stack's own key; an alias (alias/aws/sns) is an AWS managed key
                    self.keys[arn[logical_id]] = value(key)
                if kind == "AWS::DynamoDB::Table" and "ResourcePolicy" in properties:
                    self.policies[arn[logical_id]] = value(properties["ResourcePolicy"]["PolicyDocument"])["Statement"]
        for resource in resources.values():
            kind, properties = resource["Type"], resource.get("Properties", {})
            targets = {"AWS::SQS::QueuePolicy": "Queues", "AWS::SNS::TopicPolicy": "Topics"}.get(kind)
            if targets:
                for target in properties[targets]:
                    self.policies.setdefault(arn[target["Ref"]], []).extend(
                        value(properties["PolicyDocument"])["Statement"]
                    )
        check_understood([s for statements in [*self.identity.values(), *self.policies.values()] for s in statements])

    def principal_arn(self, role: str) -> str:
        return self.reference(role, "Arn")

    def decide(self, call: Call) -> Decision:
        """The call itself, then each key action the service performs for it with the caller's permission."""
        decision = self._decide(call)
        key = self.keys.get(call.resource)
        for action in KEY_ACTIONS.get(call.action, ()) if decision.allowed and key else ():
            service = call.action.split(":")[0]
            context = {"kms:ViaService": f"{service}.{self.region}.amazonaws.com", "kms:CallerAccount": self.account}
            decision = self._decide(Call(call.role, action, key, context))
            if not decision.allowed:
                break
        return decision

    def _decide(self, call: Call) -> Decision:
        if call.role in self.managed:
            raise NotImplementedError(f"{call.role}: a role with managed policies cannot be decided offline")
        principal_arn = self.principal_arn(call.role)
        request = Request(
            principal={"AWS": principal_arn},
            action=call.action,
            resource=call.resource,
            context={"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": self.account} | call.context,
        )
        identity = [s["Effect"] for s in self.identity.get(call.role, []) if _applies(s, request, identity=True)]
        resource_policy = self.policies.get(call.resource, [])
        named, delegated = [], []
        for statement in resource_policy:
            match = _principal_match(statement["Principal"], request.principal)
            if match is not None and _action_matches(statement, request):
                (named if match == "named" else delegated).append(statement["Effect"])
        if "Deny" in identity:
            return Decision(False, "with an explicit deny in an identity-based policy", call, principal_arn)
        if "Deny" in named + delegated:
            return Decision(False, "with an explicit deny in a resource-based policy", call, principal_arn)
        if call.action.startswith("kms:"):
            # A key policy is the root of access to its key: IAM policies count only where it delegates to the account.
            if "Allow" in named or ("Allow" in delegated and "Allow" in identity):
                return Decision(True, "", call, principal_arn)
            where = "identity-based" if "Allow" in delegated else "resource-based"
            return Decision(False, f"because no {where} policy allows the {call.action} action", call, principal_arn)
        if "Allow" in identity or "Allow" in named:
            return Decision(True, "", call, principal_arn)
        return Decision(False, f"because no identity-based policy allows the {call.action} action", call, principal_arn)
