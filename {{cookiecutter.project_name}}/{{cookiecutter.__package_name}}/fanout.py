"""The results topic (result_topic = sns): the worker publishes each result here, for subscribers to fan out.

Encrypted like the queues: with the stack's customer key under kms-customer, else with the AWS managed SNS key (SNS
has no AWS owned key like SSE-SQS; the managed key serves every subscriber, only AWS *service* publishers such as
CloudWatch cannot use it). TLS only. The topic policy denies sns:Publish to every principal but the worker's role,
so no one else can put a result on it, whatever their IAM policies allow.
"""

from __future__ import annotations

from aws_cdk import CfnOutput
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .settings import Settings
from .worker import Worker

TOPIC_VARIABLE = "RESULT_TOPIC_ARN"  # worker/results.py


class ResultsTopic(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, key: kms.IKey | None, publisher: Worker
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key or kms.Alias.from_alias_name(self, "ManagedKey", "alias/aws/sns")
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=settings.results_topic_name,
            display_name=f"{settings.prefix} results",
            enforce_ssl=True,
            master_key=self.key,
        )
        CfnOutput(scope, "ResultsTopicArn", value=self.topic.topic_arn, description="Subscribe to the results here")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheWorkerPublishes",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": publisher.role.role_arn}},
            )
        )
        # The publisher's side: sns:Publish on this topic, and the key's data key when it is the stack's own
        # (SNS guide: publishers to an encrypted topic need kms:GenerateDataKey and kms:Decrypt).
        publisher.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        if key is not None:
            key.grant(publisher.role, "kms:GenerateDataKey", "kms:Decrypt")
        publisher.reach("sns")
        publisher.function.add_environment(TOPIC_VARIABLE, self.topic.topic_arn)
