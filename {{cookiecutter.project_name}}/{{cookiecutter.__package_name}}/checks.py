"""cdk-nag rule packs, run on every synth: an unacknowledged finding fails the synth.

Findings are fixed where the design allows; the rest are acknowledged on the narrowest construct, next to the
code that causes them, with the reason this design accepts them.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding of `rule` (e.g. 'AwsSolutions-IAM5[Resource::*]') on `construct` and its children."""
    pack = rule.split("-", 1)[0]
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{pack}::{rule}", reason=reason))
