"""Dashboard and alarms for the whole pipeline; alarms notify an SNS topic (and alarm_email when given)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .checks import acknowledge
from .queue import QueueWithDeadLetter
from .settings import Settings

PERIOD = Duration.minutes(1)


@dataclass(frozen=True)
class ApiMetrics:
    """What every API flavour reports, whatever its own metric names."""

    requests: cloudwatch.IMetric
    client_errors: cloudwatch.IMetric
    server_errors: cloudwatch.IMetric
    latency: cloudwatch.IMetric

    @classmethod
    def of(cls, api: apigwv2.HttpApi | apigw.RestApi) -> ApiMetrics:
        """HTTP and REST APIs offer the four metrics under the same method names."""
        return cls(
            requests=api.metric_count(),
            client_errors=api.metric_client_error(),
            server_errors=api.metric_server_error(),
            latency=api.metric_latency(),
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{settings.prefix}-alarms",
            display_name=f"{settings.prefix} alarms",
            enforce_ssl=True,
        )
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "The topic carries alarm state changes only, no message data. CloudWatch cannot publish to a topic "
            "encrypted with the AWS managed SNS key, and a customer key for alarm notices is not worth its cost here.",
        )
        if settings.alarm_email:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
            acknowledge(
                subscription,
                "Serverless-SNSRedrivePolicy",
                "An undeliverable alarm e-mail needs no dead-letter queue: the alarm state stays in CloudWatch and on "
                "the dashboard, and a DLQ of alarm notices would itself need watching.",
            )

        queue, dlq = queues.queue, queues.dead_letter_queue
        self.alarms = [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                description=f"Messages failed {settings.dlq_retries} times and wait in {settings.dlq_name}.",
            ),
            self._alarm(
                "OldestMessageTooOld",
                queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=settings.oldest_message_alarm_seconds,
                description="The worker is falling behind: the oldest message waited longer than every retry needs.",
            ),
            self._alarm(
                "WorkerErrors",
                worker.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="Worker invocations failed (a whole batch failed, a timeout or a crash).",
            ),
            self._alarm(
                "WorkerThrottles",
                worker.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="Worker invocations were throttled (account concurrency exhausted).",
            ),
            self._alarm(
                "ApiServerErrors",
                api.server_errors,
                threshold=1,
                description="The API answered 5xx: look for integrationError in its access logs.",
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarm.add_ok_action(actions.SnsAction(self.topic))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.prefix)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests", left=[api.requests], right=[api.client_errors, api.server_errors]
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
                right=[dlq.metric_approximate_number_of_messages_visible(label="Dead-letter queue")],
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

    def _alarm(self, name: str, metric: cloudwatch.IMetric, *, threshold: float, description: str) -> cloudwatch.Alarm:
        return metric.create_alarm(
            self,
            name,
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
