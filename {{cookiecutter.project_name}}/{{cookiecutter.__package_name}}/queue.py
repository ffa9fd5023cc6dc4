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

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        # The stack's customer key (encryption.customer_key) with kms-customer; None: an AWS owned or managed key.
        self.key = key
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
            # High-throughput FIFO: the default FIFO quota (300 sends/s per API action for the whole queue) is below
            # what the API may be throttled at; per message group it is still 300 messages/s (docs/*-api.md).
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP if settings.fifo else None,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID if settings.fifo else None,
            removal_policy=settings.removal_policy,
            max_message_size_bytes=settings.max_message_bytes,
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
