"""The worker's network as synthesized, for `make local`: which AWS services its own calls can reach.

Read from the template, not from settings: the function's subnets and security groups, the subnets' route tables
(a NAT gateway route reaches everything), gateway endpoints on those route tables, and interface endpoints with
private DNS (the SDK's default endpoint name then resolves inside the VPC) whose security groups admit the worker
on 443. A worker outside a VPC reaches everything.

Locally a call with no route goes to a `Blackhole`: a port that never completes a TCP connection, so the SDK's
connect timeout expires, as it does in Lambda.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

HTTPS = 443


@dataclass(frozen=True)
class Routes:
    in_vpc: bool
    internet: bool  # every worker subnet routes 0.0.0.0/0 through a NAT gateway
    services: frozenset[str]  # services with a private endpoint the worker can use (sqs, sns, dynamodb, ...)

    def reaches(self, service: str) -> bool:
        return not self.in_vpc or self.internet or service in self.services

    def describe(self) -> str:
        if not self.in_vpc:
            return "not in a VPC: every endpoint is reachable"
        endpoints = ", ".join(sorted(self.services)) or "none"
        return f"in a VPC: endpoints for {endpoints}; " + ("NAT to the internet" if self.internet else "no NAT")


def routes(template: dict[str, Any], function_id: str) -> Routes:
    resources = template["Resources"]

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [r.get("Properties", {}) for r in resources.values() if r["Type"] == kind]

    vpc_config = resources[function_id]["Properties"].get("VpcConfig")
    if not vpc_config:
        return Routes(in_vpc=False, internet=True, services=frozenset())
    subnets = {ref["Ref"] for ref in vpc_config["SubnetIds"]}
    groups = {ref["Fn::GetAtt"][0] for ref in vpc_config.get("SecurityGroupIds", [])}
    if not any(_allows_https(rule) for group in groups for rule in _egress(resources[group]["Properties"])):
        return Routes(in_vpc=True, internet=False, services=frozenset())
    tables = {a["SubnetId"]["Ref"]: a["RouteTableId"]["Ref"] for a in of_type("AWS::EC2::SubnetRouteTableAssociation")}
    worker_tables = {tables.get(subnet) for subnet in subnets}
    nat_tables = {
        r["RouteTableId"]["Ref"]
        for r in of_type("AWS::EC2::Route")
        if r.get("DestinationCidrBlock") == "0.0.0.0/0" and "NatGatewayId" in r
    }
    admitted = {  # security groups that take HTTPS from one of the worker's groups
        rule["GroupId"]["Fn::GetAtt"][0]
        for rule in of_type("AWS::EC2::SecurityGroupIngress")
        if _allows_https(rule) and rule.get("SourceSecurityGroupId", {}).get("Fn::GetAtt", [None])[0] in groups
    }
    services = set()
    for endpoint in of_type("AWS::EC2::VPCEndpoint"):
        service = service_name(endpoint["ServiceName"])
        if endpoint.get("VpcEndpointType") == "Gateway":
            on = {ref["Ref"] for ref in endpoint.get("RouteTableIds", [])}
            reachable = worker_tables <= on
        else:
            endpoint_groups = {ref["Fn::GetAtt"][0] for ref in endpoint.get("SecurityGroupIds", [])}
            reachable = endpoint.get("PrivateDnsEnabled", False) is True and bool(endpoint_groups & admitted)
        if reachable:
            services.add(service)
    return Routes(in_vpc=True, internet=worker_tables <= nat_tables, services=frozenset(services))


def _egress(group: dict[str, Any]) -> list[dict[str, Any]]:
    return group.get("SecurityGroupEgress", [])


def _allows_https(rule: dict[str, Any]) -> bool:
    if str(rule.get("IpProtocol")) == "-1":
        return True
    return rule.get("IpProtocol") == "tcp" and int(rule.get("FromPort", 0)) <= HTTPS <= int(rule.get("ToPort", -1))


def service_name(value: Any) -> str:
    """com.amazonaws.<region>.sqs -> sqs (the name is a string or an Fn::Join around the region)."""
    text = "".join(p if isinstance(p, str) else "" for p in value["Fn::Join"][1]) if isinstance(value, dict) else value
    return text.rsplit(".", 1)[-1]


class Blackhole:
    """A port on 127.0.0.1 whose listen queue is full and never accepted from: a connection to it never completes,
    as one to an AWS endpoint with no route from the worker's subnets never does."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers = []
        for _ in range(3):  # a listen queue of 0 still takes one or two connections: fill it
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()
