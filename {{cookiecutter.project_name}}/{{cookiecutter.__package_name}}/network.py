"""The worker's own VPC (worker_vpc = "new"): private subnets, flow logs, and only the endpoints the worker calls."""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from .encryption import log_group
from .settings import Settings

HTTPS = ec2.Port.tcp(443)


class WorkerNetwork(Construct):
    """Two AZs of private subnets. SQS polling happens outside the function (the event source mapping), so the
    worker itself only calls X-Ray, through an interface endpoint. A worker that must reach a public endpoint
    (the WebSocket flavour's @connections API has no VPC endpoint, an extension layer's vendor) gets one NAT
    gateway: `internet_egress`.

    Availability Zones: `settings.worker_availability_zones` when given; otherwise, when the stack knows its account
    and region (app.py passes the CLI's), the CDK looks up the region's zones and the zones that offer the X-Ray
    endpoint service (kept in cdk.context.json), so the endpoint is only placed where it exists. An
    environment-agnostic synth (tests, CI without credentials) takes the region's first two zones at deploy time.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, key: kms.IKey | None, internet_egress: bool
    ) -> None:
        super().__init__(scope, construct_id)
        needs_egress = internet_egress
        private = ec2.SubnetType.PRIVATE_WITH_EGRESS if needs_egress else ec2.SubnetType.PRIVATE_ISOLATED
        subnets = [ec2.SubnetConfiguration(name="worker", subnet_type=private, cidr_mask=22)]
        if needs_egress:
            # Only the NAT gateway lives here (with its own Elastic IP): nothing gets a public address on launch.
            subnets.append(
                ec2.SubnetConfiguration(
                    name="egress", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26, map_public_ip_on_launch=False
                )
            )
        flow_logs = log_group(
            self, "FlowLogs", settings=settings, name=f"/aws/vpc/{settings.prefix}/flow-logs", key=key
        )
        zones = list(settings.worker_availability_zones) or None
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=f"{settings.prefix}-vpc",
            availability_zones=zones,
            max_azs=None if zones else 2,
            nat_gateways=1 if needs_egress else 0,
            subnet_configuration=subnets,
            # Nothing uses the default security group; restricting it would add a custom-resource Lambda.
            restrict_default_security_group=False,
            flow_logs={"All": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))},
        )
        self.subnets = ec2.SubnetSelection(subnet_type=private)
        self.security_group = ec2.SecurityGroup(
            self,
            "Worker",
            vpc=self.vpc,
            description=f"{settings.worker_name}: HTTPS out only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, "AWS APIs (X-Ray endpoint, @connections)")
        endpoint_security_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="Interface endpoints: HTTPS from the worker only",
            allow_all_outbound=False,
        )
        endpoint_security_group.add_ingress_rule(self.security_group, HTTPS, "the worker")
        self.vpc.add_interface_endpoint(
            "XRay",
            service=ec2.InterfaceVpcEndpointAwsService.XRAY,
            subnets=self.subnets,
            security_groups=[endpoint_security_group],
            open=False,
            lookup_supported_azs=not Token.is_unresolved(Stack.of(self).account + Stack.of(self).region),
        )
