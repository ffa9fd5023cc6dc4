"""cdk-nag rule packs, run on every synth: an unacknowledged finding fails the synth.

Findings are fixed where the design allows; the rest are acknowledged on the narrowest construct, next to the
code that causes them, with the reason this design accepts them.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding of `rule` (e.g. 'AwsSolutions-IAM5[Resource::*]') on `construct` and its children."""
    pack = rule.split("-", 1)[0]
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{pack}::{rule}", reason=reason))


def finding_resource(scope: IConstruct, value: str) -> str:
    """A resource as cdk-nag writes it in a finding id (`AwsSolutions-IAM5[Resource::...]`): the synthesized value,
    with references as <AWS::Region> or <LogicalId>, and literal where the stack knows them (account, region)."""
    return _flat(Stack.of(scope).resolve(value))


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flat(part) for part in parts)
    raise ValueError(f"no cdk-nag name for {value}")
