"""make preflight: the Powertools layer's public SSM parameter is looked up in the target region before a deploy,
and a missing one is reported with the override to use (botocore's Stubber answers as SSM does)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from ops import preflight

REGION = "eu-west-1"
LAYER_HERE = f"arn:aws:lambda:{REGION}:123456789012:layer:powertools:7"


class StubbedSession:
    """A boto3 session whose SSM client answers from a Stubber."""

    def __init__(self, region: str | None = REGION) -> None:
        self.region_name = region
        self.ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        self.stubber = Stubber(self.ssm)

    def client(self, service: str, region_name: str):
        assert service == "ssm"
        self.asked_region = region_name  # the region SSM is asked in
        return self.ssm


@pytest.fixture
def session(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    session = StubbedSession()
    with session.stubber:
        yield session
    session.stubber.assert_no_pending_responses()


def test_the_deploy_may_go_ahead_when_the_region_has_the_parameter(session, settings, capsys):
    session.stubber.add_response(
        "get_parameter",
        {"Parameter": {"Name": settings.powertools_layer_parameter, "Type": "String", "Value": LAYER_HERE}},
        {"Name": settings.powertools_layer_parameter},
    )
    assert preflight.main([], session=session) == 0
    assert f"{settings.stack_name} can resolve everything it needs in {REGION}" in capsys.readouterr().out
    assert session.asked_region == REGION


def test_a_missing_parameter_stops_the_deploy_and_names_the_override(session, settings, capsys):
    session.stubber.add_client_error(
        "get_parameter", "ParameterNotFound", expected_params={"Name": settings.powertools_layer_parameter}
    )
    assert preflight.main([], session=session) == 1
    err = capsys.readouterr().err
    assert f"the SSM parameter {settings.powertools_layer_parameter} does not exist in {REGION}" in err
    assert "make deploy POWERTOOLS_LAYER_ARN=arn:..." in err and "-c powertools_layer_arn=" in err


def test_a_parameter_that_cannot_be_read_is_reported_as_such(session, settings, capsys):
    session.stubber.add_client_error("get_parameter", "AccessDeniedException")
    assert preflight.main([], session=session) == 1
    assert f"could not read the SSM parameter {settings.powertools_layer_parameter}" in capsys.readouterr().err


def test_an_override_in_the_region_needs_no_parameter(session):
    assert preflight.main(["--powertools-layer-arn", LAYER_HERE], session=session) == 0


def test_an_override_from_another_region_is_refused(session, capsys):
    elsewhere = "arn:aws:lambda:us-east-1:123456789012:layer:powertools:7"
    assert preflight.main(["--powertools-layer-arn", elsewhere], session=session) == 1
    assert "the layer is in us-east-1, the stack deploys to eu-west-1" in capsys.readouterr().err


def test_no_region_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert preflight.main([], session=StubbedSession(region=None)) == 1
    assert "no AWS region configured" in capsys.readouterr().err


def test_aws_region_is_the_deploy_region_as_for_the_cdk_cli(monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    elsewhere = "arn:aws:lambda:eu-west-1:123456789012:layer:powertools:7"
    session = StubbedSession(region="eu-west-1")
    assert preflight.main(["--powertools-layer-arn", elsewhere], session=session) == 1
    assert "the stack deploys to us-east-1" in capsys.readouterr().err
    assert session.asked_region == "us-east-1"
