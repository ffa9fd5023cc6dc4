"""The work queue and its dead-letter queue, encrypted at rest and reachable only over TLS."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .checks import acknowledge
from .settings import Settings


class QueueWithDeadLetter(Construct):
    """`queue` redrives a message to `dead_letter_queue` after `settings.dlq_retries` receives."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)

        # One customer key serves both queues; None means the queues use an AWS owned or managed key.
        self.key: kms.Key | None = None
        if settings.queue_encryption == "kms-customer":
            self.key = kms.Key(
                self,
                "Key",
                alias=f"alias/{settings.prefix}-queue",
                description=f"Encrypts the messages of {settings.queue_name} and {settings.dlq_name}",
                enable_key_rotation=True,
                removal_policy=settings.removal_policy,
            )
        encryption = {
            "kms-managed": sqs.QueueEncryption.KMS_MANAGED,
            "kms-customer": sqs.QueueEncryption.KMS,
            "sqs-managed": sqs.QueueEncryption.SQS_MANAGED,
        }[settings.queue_encryption]
        common = dict(
            encryption=encryption,
            encryption_master_key=self.key,
            enforce_ssl=True,
            fifo=settings.fifo or None,
            removal_policy=settings.removal_policy,
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=settings.dlq_name,
            retention_period=Duration.days(settings.dlq_retention_days),
            **common,
        )
        acknowledge(
            self.dead_letter_queue,
            "Serverless-SQSRedrivePolicy",
            "This is the dead-letter queue itself; its messages go back to the work queue with `make redrive` "
            "once the cause is fixed, never to a further queue.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=settings.queue_name,
            retention_period=Duration.days(settings.queue_retention_days),
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=settings.dlq_retries),
            **common,
        )

    def grant_send(self, grantee: iam.IGrantable) -> None:
        """What a producer needs to put messages on the queue: SendMessage, and the key when it is our own."""
        self.queue.grant(grantee, "sqs:SendMessage")
        self.grant_key_for_send(grantee)

    def grant_key_for_send(self, grantee: iam.IGrantable) -> None:
        # SQS asks KMS for a data key (GenerateDataKey) and may reuse a cached one (Decrypt) on the sender's behalf.
        if self.key is not None:
            self.key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
