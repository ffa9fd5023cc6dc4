"""worker_vpc: the worker runs in private subnets of its own VPC only when asked, with only the endpoints it needs."""

from __future__ import annotations


def test_vpc_resources_exist_exactly_when_asked(synthesized, settings):
    vpcs = synthesized.resources("AWS::EC2::VPC")
    assert len(vpcs) == (1 if settings.worker_vpc == "new" else 0)
    vpc_config = synthesized.only("AWS::Lambda::Function").get("VpcConfig")
    assert (vpc_config is not None) == (settings.worker_vpc == "new")


def test_worker_sits_in_private_subnets_behind_an_https_only_security_group(synthesized, settings):
    vpc_config = synthesized.only("AWS::Lambda::Function").get("VpcConfig", {"SubnetIds": [], "SecurityGroupIds": []})
    public = {
        lid
        for lid, s in synthesized.resources("AWS::EC2::Subnet").items()
        if s["Properties"].get("MapPublicIpOnLaunch")
    }
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
