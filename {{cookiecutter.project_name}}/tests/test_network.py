"""worker_vpc: the worker runs in private subnets of its own VPC only when asked, with only the endpoints it needs."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from {{ cookiecutter.__package_name }}.stack import QueueStack
from conftest import Synthesized


def test_vpc_resources_exist_exactly_when_asked(synthesized, settings):
    vpcs = synthesized.resources("AWS::EC2::VPC")
    assert len(vpcs) == (1 if settings.worker_vpc == "new" else 0)
    vpc_config = synthesized.only("AWS::Lambda::Function").get("VpcConfig")
    assert (vpc_config is not None) == (settings.worker_vpc == "new")


def test_worker_sits_in_private_subnets_behind_an_https_only_security_group(synthesized, settings):
    vpc_config = synthesized.only("AWS::Lambda::Function").get("VpcConfig", {"SubnetIds": [], "SecurityGroupIds": []})
    public = {  # subnets whose route table sends traffic to the internet gateway
        association["Properties"]["SubnetId"]["Ref"]
        for association in synthesized.resources("AWS::EC2::SubnetRouteTableAssociation").values()
        for route in synthesized.resources("AWS::EC2::Route").values()
        if route["Properties"]["RouteTableId"] == association["Properties"]["RouteTableId"]
        and "GatewayId" in route["Properties"]
    }
    assert not [
        s for s in synthesized.resources("AWS::EC2::Subnet").values() if s["Properties"].get("MapPublicIpOnLaunch")
    ]
    subnet_ids = {ref["Ref"] for ref in vpc_config["SubnetIds"]}
    assert not subnet_ids & public
    assert len(subnet_ids) == (2 if settings.worker_vpc == "new" else 0)
    for group in vpc_config["SecurityGroupIds"]:
        egress = synthesized.json["Resources"][group["Fn::GetAtt"][0]]["Properties"]["SecurityGroupEgress"]
        assert [(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in egress] == [("tcp", 443, 443)]


def test_only_the_xray_endpoint_is_created_and_egress_only_for_websocket_replies(synthesized, settings):
    endpoints = [e["Properties"]["ServiceName"] for e in synthesized.resources("AWS::EC2::VPCEndpoint").values()]
    in_vpc = settings.worker_vpc == "new"
    assert len(endpoints) == (1 if in_vpc else 0)
    assert all("xray" in str(name) for name in endpoints)
    nat_gateways = synthesized.resources("AWS::EC2::NatGateway")
    assert len(nat_gateways) == (1 if in_vpc and settings.api_flavour == "websocket" else 0)


def test_vpc_traffic_is_flow_logged(synthesized, settings):
    assert len(synthesized.resources("AWS::EC2::FlowLog")) == (1 if settings.worker_vpc == "new" else 0)


def test_worker_may_manage_its_network_interfaces_only_in_a_vpc(synthesized, settings):
    role_id = synthesized.only("AWS::Lambda::Function")["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for statement in synthesized.statements_of(role_id)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert ("ec2:CreateNetworkInterface" in actions) == (settings.worker_vpc == "new")


ACCOUNT, REGION = "111122223333", "eu-west-1"
XRAY_ZONES = ["eu-west-1b", "eu-west-1c"]  # as if the region's X-Ray endpoint service were not offered in 1a
EXTENSION = f"arn:aws:lambda:{REGION}:464622532012:layer:Datadog-Extension-ARM:65"


@pytest.fixture(scope="module")
def deployed_in_a_known_region(settings, tmp_path_factory) -> dict:
    """The stack as `cdk deploy` with credentials synthesizes it, cdk-nag checks included: account and region known,
    the CDK's lookups answered (as cdk.context.json would), a VPC, and an extension layer (an observability agent
    that calls its vendor)."""
    in_vpc = dataclasses.replace(settings, worker_vpc="new", worker_extension_layer_arns=(EXTENSION,))
    synthesized = Synthesized(
        in_vpc,
        tmp_path_factory.mktemp("cdk.out.region"),
        env=cdk.Environment(account=ACCOUNT, region=REGION),
        context={
            f"availability-zones:account={ACCOUNT}:region={REGION}": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
            f"endpoint-service-availability-zones:account={ACCOUNT}:region={REGION}"
            f":serviceName=com.amazonaws.{REGION}.xray": XRAY_ZONES,
        },
    )
    return synthesized.json


def subnets_of(template: dict, ids: list) -> set[str]:
    return {template["Resources"][ref["Ref"]]["Properties"]["AvailabilityZone"] for ref in ids}


def test_in_a_known_region_the_xray_endpoint_is_placed_only_where_it_is_offered(deployed_in_a_known_region):
    template = deployed_in_a_known_region
    [endpoint] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    assert subnets_of(template, endpoint["SubnetIds"]) <= set(XRAY_ZONES)
    [function] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(subnets_of(template, function["VpcConfig"]["SubnetIds"])) == 2  # two zones, named, not looked up later


def test_an_extension_layer_gets_a_way_out_to_its_vendor(deployed_in_a_known_region):
    template = deployed_in_a_known_region
    assert [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::NatGateway"]
    [function] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert EXTENSION in function["Layers"]
    routes = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Route"]
    worker_route_tables = {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in template["Resources"].values()
        if a["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
        and a["Properties"]["SubnetId"] in function["VpcConfig"]["SubnetIds"]
    }
    assert all(
        any(r["RouteTableId"] == {"Ref": table} and "NatGatewayId" in r for r in routes)
        for table in worker_route_tables
    )


def test_availability_zones_named_in_settings_are_used_as_given(settings):
    app = cdk.App()
    zones = ("eu-west-1b", "eu-west-1c")
    chosen = dataclasses.replace(settings, worker_vpc="new", worker_availability_zones=zones)
    template = Template.from_stack(QueueStack(app, settings=chosen)).to_json()
    found = {
        r["Properties"]["AvailabilityZone"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"
    }
    assert found == set(zones)
