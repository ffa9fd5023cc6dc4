"""Shared fixtures: the stack is synthesized once per test session (a synth costs seconds and ~450 MiB)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from {{ cookiecutter.__package_name }}.checks import add_checks
from {{ cookiecutter.__package_name }}.settings import ANSWERS, Settings
from {{ cookiecutter.__package_name }}.stack import QueueStack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


class Synthesized:
    """The cloud assembly of one synth with the cdk-nag checks on, and easy access to its stack template."""

    def __init__(self, settings: Settings, outdir: Path) -> None:
        app = cdk.App(outdir=str(outdir))
        self.stack = QueueStack(app, settings=settings)
        add_checks(app)
        self.assembly = app.synth()  # raises if a check reports an unacknowledged finding
        self.outdir = outdir
        self.template_path = outdir / self.stack.template_file
        self.json: dict[str, Any] = json.loads(self.template_path.read_text())
        self.template = Template.from_json(self.json)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> dict[str, Any]:
        """The properties of the single resource of this type (fails if there are none or several)."""
        [resource] = self.resources(resource_type).values()
        return resource.get("Properties", {})

    def named(self, resource_type: str, name_property: str, name: str) -> str:
        """The logical id of the one resource of this type with this name (e.g. a queue by its QueueName)."""
        [logical_id] = [
            logical_id
            for logical_id, resource in self.resources(resource_type).items()
            if resource["Properties"].get(name_property) == name
        ]
        return logical_id

    def queue_id(self, name: str) -> str:
        return self.named("AWS::SQS::Queue", "QueueName", name)

    def log_group_id(self, name: str) -> str:
        return self.named("AWS::Logs::LogGroup", "LogGroupName", name)

    def statements_of(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of the inline policies attached to a role."""
        return [
            statement
            for policy in self.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return ANSWERS


@pytest.fixture(scope="session")
def synthesized(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return Synthesized(settings, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}
