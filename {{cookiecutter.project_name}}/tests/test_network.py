"""worker_vpc: the worker runs in private subnets of its own VPC only when asked, with a route to every AWS service it
calls (derived from what its role may call) and nothing more."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest

from conftest import Synthesized
from local.network import routes, service_name
from local.policies import Authority, Call


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


# What the worker's role may do that is not a call from the worker's own code: Lambda writes its logs, uploads its
# traces and manages its network interfaces; the event source mapping polls the queue; SQS and SNS use the key.
NOT_THE_WORKERS_CALLS = {"logs", "xray", "ec2", "kms"}
MAPPING_ACTIONS = {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage"}
MAPPING_ACTIONS |= {"sqs:GetQueueAttributes"}
NO_VPC_ENDPOINT = {"execute-api"}  # the @connections API: reached through a NAT gateway


def services_the_worker_calls(synthesized) -> set[str]:
    """What the worker's own code may call: every service its role's policies allow, less what others do with it."""
    role_id = synthesized.only("AWS::Lambda::Function")["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for statement in synthesized.statements_of(role_id)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    return {action.split(":")[0] for action in actions - MAPPING_ACTIONS} - NOT_THE_WORKERS_CALLS


@pytest.mark.parametrize("stack", ["synthesized", "with_options"])
def test_in_a_vpc_the_worker_has_a_route_to_every_service_it_calls(stack, request):
    """Decided as `make local` decides it (local/network.py): subnets, route tables, endpoints and their private DNS
    and security groups as synthesized. `with_options` is in a VPC with the results topic and idempotency table."""
    synthesized = request.getfixturevalue(stack)
    calls = services_the_worker_calls(synthesized)
    network = routes(synthesized.json, synthesized.only_id("AWS::Lambda::Function"))
    assert "sqs" in calls  # rejects to the dead-letter queue, in every project
    assert {service for service in calls if not network.reaches(service)} == set()
    if stack == "with_options":
        assert network.in_vpc and {"sqs", "sns", "dynamodb"} <= calls
        assert network.internet == bool(calls & NO_VPC_ENDPOINT)


def test_endpoints_are_those_of_the_services_the_worker_calls_and_nat_only_for_websocket_replies(
    synthesized, answers, expected
):
    """An endpoint per service the worker calls (and X-Ray's), nothing more; a NAT gateway only for the @connections
    API, one per zone on prod-like stages (a zone's outage must not stop the other zone's replies)."""
    endpoints = {
        service_name(e["Properties"]["ServiceName"]) for e in synthesized.resources("AWS::EC2::VPCEndpoint").values()
    }
    in_vpc = answers["worker_vpc"] == "new"
    calls = services_the_worker_calls(synthesized) - NO_VPC_ENDPOINT
    assert endpoints == ({"xray"} | calls if in_vpc else set())
    assert calls == {"sqs"} | ({"sns"} if expected.result_topic == "sns" else set()) | (
        {"dynamodb"} if expected.idempotency == "dynamodb" else set()
    )
    nat_gateways = synthesized.resources("AWS::EC2::NatGateway")
    websocket = in_vpc and answers["api_flavour"] == "websocket"
    assert len(nat_gateways) == ((2 if expected.prod_like else 1) if websocket else 0)


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
ALL_ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]  # where the other endpoint services are offered
EXTENSION = f"arn:aws:lambda:{REGION}:464622532012:layer:Datadog-Extension-ARM:65"
# A call of the user's own logic, granted as the README says (settings.worker_permissions).
OWN_CALL = ("s3:GetObject", "arn:aws:s3:::reports/latest.csv")  # (a wildcard would need a cdk-nag acknowledgement)


@pytest.fixture(scope="module")
def deployed_in_a_known_region(settings, tmp_path_factory) -> dict:
    """The stack as `cdk deploy` with credentials synthesizes it, cdk-nag checks included: account and region known,
    the CDK's lookups answered (as cdk.context.json would), a VPC in two named zones, and an extension layer (an
    observability agent that calls its vendor), and a grant for a call of the user's own logic."""
    in_vpc = dataclasses.replace(
        settings,
        worker_vpc="new",
        worker_availability_zones=ZONES,
        worker_extension_layer_arns=(EXTENSION,),
        worker_permissions=(OWN_CALL,),
    )
    synthesized = Synthesized(
        in_vpc,
        tmp_path_factory.mktemp("cdk.out.region"),
        env=cdk.Environment(account=ACCOUNT, region=REGION),
        context={
            f"availability-zones:account={ACCOUNT}:region={REGION}": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
            f"endpoint-service-availability-zones:account={ACCOUNT}:region={REGION}"
            f":serviceName=com.amazonaws.{REGION}.xray": XRAY_ZONES,
            **{
                f"endpoint-service-availability-zones:account={ACCOUNT}:region={REGION}"
                f":serviceName=com.amazonaws.{REGION}.{service}": ALL_ZONES
                for service in ("sqs", "sns")
            },
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


def test_in_a_known_region_each_interface_endpoint_is_placed_only_where_it_is_offered(deployed_in_a_known_region):
    endpoints = {
        service_name(e["ServiceName"]): e
        for e in resources(deployed_in_a_known_region, "AWS::EC2::VPCEndpoint")
        if e["VpcEndpointType"] == "Interface"
    }
    assert {"xray", "sqs"} <= set(endpoints)
    for service, endpoint in endpoints.items():
        offered = XRAY_ZONES if service == "xray" else ALL_ZONES
        assert zones_of(deployed_in_a_known_region, endpoint["SubnetIds"]) == set(ZONES) & set(offered), service


def test_a_granted_call_of_the_users_logic_is_allowed_and_routed(deployed_in_a_known_region):
    """settings.worker_permissions: the worker's role may make the call (decided as `make local` decides it), and
    its service gets an endpoint (S3: a gateway endpoint on the worker's route tables), NAT or not."""
    template = deployed_in_a_known_region
    function_id = next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
    role = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    authority = Authority(template, account=ACCOUNT, region=REGION)
    assert authority.decide(Call(role, *OWN_CALL)).allowed
    assert not authority.decide(Call(role, OWN_CALL[0], "arn:aws:s3:::reports/other.csv")).allowed
    assert not authority.decide(Call(role, "s3:PutObject", OWN_CALL[1])).allowed
    assert "s3" in routes(template, function_id).services


def test_an_extension_layer_gets_a_way_out_to_its_vendor(deployed_in_a_known_region):
    template = deployed_in_a_known_region
    nats = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::NatGateway"}
    [function] = resources(template, "AWS::Lambda::Function")
    assert EXTENSION in function["Layers"]
    routes = resources(template, "AWS::EC2::Route")
    worker_route_tables = {
        a["RouteTableId"]["Ref"]
        for a in resources(template, "AWS::EC2::SubnetRouteTableAssociation")
        if a["SubnetId"] in function["VpcConfig"]["SubnetIds"]
    }
    assert worker_route_tables
    for table in worker_route_tables:  # the default route of each of the worker's subnets goes out through a NAT
        assert any(
            r["RouteTableId"] == {"Ref": table}
            and r.get("DestinationCidrBlock") == "0.0.0.0/0"
            and r.get("NatGatewayId", {}).get("Ref") in nats
            for r in routes
        ), table
