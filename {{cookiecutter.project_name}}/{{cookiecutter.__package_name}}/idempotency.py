"""The idempotency table (idempotency = dynamodb): Powertools keeps one record per message key here (worker/
idempotency.py), so that a duplicate delivery or a client's retry is processed once.

On demand (it scales with the queue, costs nothing idle), records expire through DynamoDB's TTL on the attribute
Powertools writes (`expiration`), encrypted like the queues. Prod-like stages keep point-in-time recovery and
retain the table on `cdk destroy`: losing it would let every remembered message run again.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from .checks import acknowledge
from .settings import Settings
from .worker import Worker

# What Powertools' DynamoDB persistence layer calls, and nothing more (no Scan, Query or batch writes).
RECORD_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
ENCRYPTION = {
    "kms-customer": dynamodb.TableEncryption.CUSTOMER_MANAGED,
    "kms-managed": dynamodb.TableEncryption.AWS_MANAGED,
    "sqs-managed": dynamodb.TableEncryption.DEFAULT,  # an AWS owned key, as SSE-SQS
}


class IdempotencyTable(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, key: kms.IKey | None, worker: Worker
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=settings.idempotency_table_name,
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=settings.prod_like
            ),
            encryption=ENCRYPTION[settings.queue_encryption],
            encryption_key=key,
            removal_policy=settings.removal_policy,
        )
        for rule in ("AwsSolutions-DDB3", "Serverless-DynamoDBPITREnabled") if not settings.prod_like else ():
            acknowledge(
                self.table,
                rule,
                "Point-in-time recovery is on for prod-like stages only (settings.PROD_LIKE_STAGES): elsewhere the "
                "table holds short-lived idempotency records of test traffic, deleted with the stack.",
            )
        self.table.grant(worker.role, *RECORD_ACTIONS)
        if key is not None:  # DynamoDB encrypts and decrypts items with the caller's permission on the key
            key.grant(worker.role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
        worker.reach("dynamodb")
        worker.function.add_environment("IDEMPOTENCY_TABLE", self.table.table_name)
        worker.function.add_environment("IDEMPOTENCY_KEY_FIELD", settings.idempotency_key_field)
        worker.function.add_environment("IDEMPOTENCY_EXPIRY_SECONDS", str(settings.idempotency_expiry))
