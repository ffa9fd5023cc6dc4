"""The worker's own VPC (worker_vpc = "new"): private subnets, flow logs, and a route to every AWS service the worker
calls, and nothing more."""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from .encryption import log_group
from .settings import Settings

HTTPS = ec2.Port.tcp(443)
# DynamoDB and S3 take a gateway endpoint (a route-table entry, free of charge); every other service an interface
# endpoint in each zone (com.amazonaws.<region>.<service>).
GATEWAY_ENDPOINTS = {"dynamodb": ec2.GatewayVpcEndpointAwsService.DYNAMODB, "s3": ec2.GatewayVpcEndpointAwsService.S3}
ENDPOINT_IDS = {"sqs": "Sqs", "sns": "Sns", "xray": "XRay", "dynamodb": "DynamoDb", "s3": "S3"}  # construct ids


class WorkerNetwork(Construct):
    """Two AZs of private subnets. The worker reaches AWS through VPC endpoints, one per service it calls: each
    construct that lets the worker call a service also opens the route (`reach`): the worker itself for the
    dead-letter queue (SQS), the results topic (SNS), the idempotency table (DynamoDB); X-Ray always. SQS *polling*
    happens outside the function (the event source mapping) and needs no route. A worker that must reach a public
    endpoint (the WebSocket flavour's @connections API has no VPC endpoint, an extension layer's vendor) gets NAT
    gateways: `internet_egress`, one per zone on prod-like stages (a zone's outage must not cut the other's replies),
    one in all elsewhere (about $33 a month less, and a zone's outage stops the replies).

    Availability Zones: `settings.worker_availability_zones` when given; otherwise, when the stack knows its account
    and region (app.py passes the CLI's), the CDK looks up the region's zones and the zones that offer each interface
    endpoint service (kept in cdk.context.json), so an endpoint is only placed where it exists. An
    environment-agnostic synth (tests, CI without credentials) takes the region's first two zones at deploy time.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, key: kms.IKey | None, internet_egress: bool
    ) -> None:
        super().__init__(scope, construct_id)
        private = ec2.SubnetType.PRIVATE_WITH_EGRESS if internet_egress else ec2.SubnetType.PRIVATE_ISOLATED
        subnets = [ec2.SubnetConfiguration(name="worker", subnet_type=private, cidr_mask=22)]
        if internet_egress:
            # Only the NAT gateways live here (each with its own Elastic IP): nothing gets a public address on launch.
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
            nat_gateways=(len(zones or [1, 2]) if settings.prod_like else 1) if internet_egress else 0,
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
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, "AWS APIs (VPC endpoints, @connections)")
        self._endpoint_security_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="Interface endpoints: HTTPS from the worker only",
            allow_all_outbound=False,
        )
        self._endpoint_security_group.add_ingress_rule(self.security_group, HTTPS, "the worker")
        self.reached: set[str] = set()
        self.reach("xray")

    def reach(self, service: str) -> None:
        """A private route from the worker's subnets to `service` (an SDK service name: sqs, sns, dynamodb, ...)."""
        if service in self.reached:
            return
        self.reached.add(service)
        name = ENDPOINT_IDS.get(service) or service.title().replace("-", "")
        if service in GATEWAY_ENDPOINTS:
            self.vpc.add_gateway_endpoint(name, service=GATEWAY_ENDPOINTS[service], subnets=[self.subnets])
            return
        stack = Stack.of(self)
        self.vpc.add_interface_endpoint(
            name,
            service=ec2.InterfaceVpcEndpointAwsService(service),
            subnets=self.subnets,
            security_groups=[self._endpoint_security_group],
            open=False,
            private_dns_enabled=True,  # the SDK's default endpoint name resolves to the endpoint inside the VPC
            lookup_supported_azs=not Token.is_unresolved(stack.account + stack.region),
        )
