"""worker_vpc: the worker runs in private subnets of its own VPC only when asked, with only the endpoints it needs."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest

from conftest import Synthesized


def test_vpc_resources_exist_exactly_when_asked(synthesized, answers):
    vpcs = synthesized.resources("AWS::EC2::VPC")
    assert len(vpcs) == (1 if answers["worker_vpc"] == "new" else 0)
    vpc_config = synthesized.only("AWS::Lambda::Function").get("VpcConfig")
    assert (vpc_config is not None) == (answers["worker_vpc"] == "new")


def test_worker_sits_in_private_subnets_behind_an_https_only_security_group(synthesized, answers):
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
    assert len(subnet_ids) == (2 if answers["worker_vpc"] == "new" else 0)
    for group in vpc_config["SecurityGroupIds"]:
        egress = synthesized.json["Resources"][group["Fn::GetAtt"][0]]["Properties"]["SecurityGroupEgress"]
        assert [(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in egress] == [("tcp", 443, 443)]


def test_only_the_xray_endpoint_is_created_and_egress_only_for_websocket_replies(synthesized, answers):
    endpoints = [e["Properties"]["ServiceName"] for e in synthesized.resources("AWS::EC2::VPCEndpoint").values()]
    in_vpc = answers["worker_vpc"] == "new"
    assert len(endpoints) == (1 if in_vpc else 0)
    assert all("xray" in str(name) for name in endpoints)
    nat_gateways = synthesized.resources("AWS::EC2::NatGateway")
    assert len(nat_gateways) == (1 if in_vpc and answers["api_flavour"] == "websocket" else 0)


def test_vpc_traffic_is_flow_logged(synthesized, answers):
    assert len(synthesized.resources("AWS::EC2::FlowLog")) == (1 if answers["worker_vpc"] == "new" else 0)


def test_worker_may_manage_its_network_interfaces_only_in_a_vpc(synthesized, answers):
    role_id = synthesized.only("AWS::Lambda::Function")["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for statement in synthesized.statements_of(role_id)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert ("ec2:CreateNetworkInterface" in actions) == (answers["worker_vpc"] == "new")


ACCOUNT, REGION = "111122223333", "eu-west-1"
ZONES = ("eu-west-1a", "eu-west-1b")  # named in settings
XRAY_ZONES = ["eu-west-1b", "eu-west-1c"]  # as if the region's X-Ray endpoint service were not offered in 1a
EXTENSION = f"arn:aws:lambda:{REGION}:464622532012:layer:Datadog-Extension-ARM:65"


@pytest.fixture(scope="module")
def deployed_in_a_known_region(settings, tmp_path_factory) -> dict:
    """The stack as `cdk deploy` with credentials synthesizes it, cdk-nag checks included: account and region known,
    the CDK's lookups answered (as cdk.context.json would), a VPC in two named zones, and an extension layer (an
    observability agent that calls its vendor)."""
    in_vpc = dataclasses.replace(
        settings, worker_vpc="new", worker_availability_zones=ZONES, worker_extension_layer_arns=(EXTENSION,)
    )
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


def resources(template: dict, resource_type: str) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == resource_type]


def zones_of(template: dict, subnet_ids: list) -> set[str]:
    return {template["Resources"][ref["Ref"]]["Properties"]["AvailabilityZone"] for ref in subnet_ids}


def test_the_worker_runs_in_the_zones_named_in_settings(deployed_in_a_known_region):
    [function] = resources(deployed_in_a_known_region, "AWS::Lambda::Function")
    assert zones_of(deployed_in_a_known_region, function["VpcConfig"]["SubnetIds"]) == set(ZONES)


def test_in_a_known_region_the_xray_endpoint_is_placed_only_where_it_is_offered(deployed_in_a_known_region):
    [endpoint] = resources(deployed_in_a_known_region, "AWS::EC2::VPCEndpoint")
    assert zones_of(deployed_in_a_known_region, endpoint["SubnetIds"]) == set(ZONES) & set(XRAY_ZONES)


def test_an_extension_layer_gets_a_way_out_to_its_vendor(deployed_in_a_known_region):
    template = deployed_in_a_known_region
    assert resources(template, "AWS::EC2::NatGateway")
    [function] = resources(template, "AWS::Lambda::Function")
    assert EXTENSION in function["Layers"]
    routes = resources(template, "AWS::EC2::Route")
    worker_route_tables = {
        a["RouteTableId"]["Ref"]
        for a in resources(template, "AWS::EC2::SubnetRouteTableAssociation")
        if a["SubnetId"] in function["VpcConfig"]["SubnetIds"]
    }
    assert worker_route_tables
    for table in worker_route_tables:
        assert any(r["RouteTableId"] == {"Ref": table} and "NatGatewayId" in r for r in routes), table
