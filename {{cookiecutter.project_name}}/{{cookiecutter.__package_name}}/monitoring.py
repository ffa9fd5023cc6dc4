"""Dashboard and alarms for the whole pipeline; alarms notify an SNS topic (and alarm_email when given).

An SNS topic policy replaces SNS's default one, so the topic policy must itself allow this stack's alarms to publish
(and, when the topic is encrypted with the customer key, the key policy must let them use the key).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .checks import acknowledge
from .encryption import allow_alarms_to_use
from .queue import QueueWithDeadLetter
from .settings import Settings

PERIOD = Duration.minutes(1)


@dataclass(frozen=True)
class ApiMetrics:
    """What every API flavour reports, whatever its own metric names; labels and `failures` say what they count."""

    requests: cloudwatch.IMetric
    client_errors: cloudwatch.IMetric
    server_errors: cloudwatch.IMetric
    latency: cloudwatch.IMetric
    failures: str  # what server_errors counts, in words (the alarm's description)

    @classmethod
    def of(cls, api: apigwv2.HttpApi | apigw.RestApi) -> ApiMetrics:
        """HTTP and REST APIs offer the four metrics under the same method names."""
        return cls(
            requests=api.metric_count(label="Requests", period=PERIOD),
            client_errors=api.metric_client_error(label="4xx", period=PERIOD),
            server_errors=api.metric_server_error(label="5xx", period=PERIOD),
            latency=api.metric_latency(label="Latency", period=PERIOD),
            failures="The API answered 5xx: the message was not queued (integrationError in the access logs says why).",
        )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        queues: QueueWithDeadLetter,
        worker: lambda_.Function,
        api: ApiMetrics,
        results: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        key = queues.key
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{settings.prefix}-alarms",
            display_name=f"{settings.prefix} alarms",
            enforce_ssl=True,
            master_key=key,
        )
        if key is not None:
            allow_alarms_to_use(key)
        else:
            acknowledge(
                self.topic,
                "AwsSolutions-SNS2",
                "The topic carries alarm state changes only, no message data. CloudWatch alarms cannot publish to a "
                "topic encrypted with the AWS managed SNS key (its key policy cannot be changed to allow them), so "
                "the topic is encrypted only with queue_encryption=kms-customer, with that key.",
            )
        if settings.alarm_email:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
            acknowledge(
                subscription,
                "Serverless-SNSRedrivePolicy",
                "An undeliverable alarm e-mail needs no dead-letter queue: the alarm state stays in CloudWatch and on "
                "the dashboard, and a DLQ of alarm notices would itself need watching.",
            )

        self.prefix = settings.prefix
        self.alarm_names: list[str] = []
        queue, dlq = queues.queue, queues.dead_letter_queue
        dlq_depth = dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        self.alarms = [
            self._alarm(
                "dlq-not-empty",
                dlq_depth,
                threshold=1,
                description=f"Messages failed {settings.dlq_retries} times, or were rejected (DeadLetterReason), and "
                f"wait in {settings.dlq_name}.",
            ),
            # A dead-lettered message is not counted in the DLQ's NumberOfMessagesSent, and the not-empty alarm stays
            # in ALARM (silent) while older messages wait: this one notifies each time the depth grows.
            self._alarm(
                "dlq-new-messages",
                cloudwatch.MathExpression(
                    expression="DIFF(depth)",
                    using_metrics={"depth": dlq_depth},
                    label="New dead-letter messages",
                    period=PERIOD,  # a math expression's own period (default 5 minutes) overrides its metrics'
                ),
                threshold=1,
                evaluation_periods=2,  # DIFF needs the minute before
                description=f"New messages were dead-lettered to {settings.dlq_name} in the last minute.",
            ),
            self._alarm(
                "oldest-message-too-old",
                queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=settings.oldest_message_alarm_seconds,
                description="The worker is falling behind: the oldest message waited longer than every retry needs "
                "(or half the queue's retention).",
            ),
            self._alarm(
                "worker-errors",
                worker.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="Worker invocations failed (a whole batch failed, a timeout or a crash).",
            ),
            self._alarm(
                "worker-throttles",
                worker.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="Worker invocations were throttled (account concurrency exhausted).",
            ),
            self._alarm("api-errors", api.server_errors, threshold=1, description=api.failures),
        ]
        if results is not None:  # result_topic = sns
            self.alarms += [
                self._alarm(
                    "results-publish-failed",
                    cloudwatch.Metric(
                        namespace=settings.metrics_namespace,
                        metric_name="ResultsPublishFailed",  # worker/results.py
                        dimensions_map={"service": settings.service_name},  # Powertools adds it to every metric
                        period=PERIOD,
                        statistic="Sum",
                    ),
                    threshold=1,
                    description="The worker could not publish results to the results topic; those messages are "
                    "retried, and dead-lettered if it goes on.",
                ),
                self._alarm(
                    "results-delivery-failed",
                    results.metric_number_of_notifications_failed(period=PERIOD, statistic="Sum"),
                    threshold=1,
                    description="SNS could not deliver results to a subscriber (its own retry policy and "
                    "dead-letter queue decide what becomes of them).",
                ),
            ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarm.add_ok_action(actions.SnsAction(self.topic))
        # The topic policy holds the TLS-only Deny (enforce_ssl) and this Allow; without it no alarm is delivered.
        # Scoped as CloudWatch's guide recommends (aws:SourceAccount, aws:SourceArn), to these alarms by name.
        alarm_arns = [
            Stack.of(self).format_arn(
                service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
            )
            for name in self.alarm_names
        ]
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsOfThisStackPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                },
            )
        )

        # Dashboard names are global to the account: the region keeps two regions' deployments apart.
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{settings.prefix}-{Aws.REGION}")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API traffic and errors", left=[api.requests], right=[api.client_errors, api.server_errors]
            ),
            cloudwatch.GraphWidget(title="API latency", left=[api.latency]),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(),
                    queue.metric_approximate_number_of_messages_not_visible(),
                ],
                right=[dlq_depth.with_(label="Dead-letter queue")],
            ),
            cloudwatch.GraphWidget(
                title="Age of oldest message (s)", left=[queue.metric_approximate_age_of_oldest_message()]
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Worker", left=[worker.metric_invocations(), worker.metric_errors(), worker.metric_throttles()]
            ),
            cloudwatch.GraphWidget(title="Worker duration", left=[worker.metric_duration()]),
            cloudwatch.GraphWidget(
                title="Worker concurrency",
                left=[worker.metric("ConcurrentExecutions", statistic="Maximum")],
            ),
        )

    def _alarm(
        self,
        what: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        """An alarm named `{prefix}-{what}`: the name is what a notification shows first."""
        self.alarm_names.append(f"{self.prefix}-{what}")
        return metric.create_alarm(
            self,
            "".join(part.capitalize() for part in what.split("-")),
            alarm_name=self.alarm_names[-1],
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
