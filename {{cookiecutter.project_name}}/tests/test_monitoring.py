"""Alarms notify one SNS topic (and alarm_email); the dashboard shows API, queues and worker."""

from __future__ import annotations

import json


def watched(alarm: dict) -> list[tuple[str, str]]:
    """(namespace, metric name) of what an alarm watches: one metric, or every metric of a math expression."""
    if "MetricName" in alarm:
        return [(alarm["Namespace"], alarm["MetricName"])]
    return [
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in alarm["Metrics"]
        if "MetricStat" in m
    ]


def alarms_by_metric(synthesized) -> dict[str, dict]:
    return {
        name: alarm["Properties"]
        for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values()
        for _, name in watched(alarm["Properties"])
    }


def test_every_alarm_notifies_the_topic_on_alarm_and_recovery(synthesized):
    topic_id = synthesized.only_id("AWS::SNS::Topic")
    alarms = synthesized.resources("AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 5
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]


def test_dead_letter_queue_alarm_fires_on_the_first_message(synthesized, settings):
    alarm = alarms_by_metric(synthesized)["ApproximateNumberOfMessagesVisible"]
    dlq_id = synthesized.queue_id(settings.dlq_name)
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_oldest_message_alarm_threshold_follows_the_retry_budget(synthesized, settings):
    alarm = alarms_by_metric(synthesized)["ApproximateAgeOfOldestMessage"]
    assert alarm["Threshold"] == settings.visibility_timeout_seconds * settings.dlq_retries


def test_worker_errors_throttles_and_api_server_errors_are_alarmed(synthesized, settings):
    alarms = alarms_by_metric(synthesized)
    assert {"Errors", "Throttles"} <= set(alarms)
    api_alarms = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if {namespace for namespace, _ in watched(a["Properties"])} == {"AWS/ApiGateway"}
    ]
    assert len(api_alarms) == 1 and api_alarms[0]["Threshold"] == 1
    server_errors = {"http": {"5xx"}, "rest": {"5XXError"}, "websocket": {"IntegrationError", "ExecutionError"}}
    assert {name for _, name in watched(api_alarms[0])} == server_errors[settings.api_flavour]


def test_alarm_email_is_subscribed_exactly_when_given(synthesized, settings):
    subscriptions = [s["Properties"] for s in synthesized.resources("AWS::SNS::Subscription").values()]
    expected = [settings.alarm_email] if settings.alarm_email else []
    assert [s["Endpoint"] for s in subscriptions if s["Protocol"] == "email"] == expected


def test_alarm_topic_accepts_tls_only(synthesized):
    [policy] = synthesized.resources("AWS::SNS::TopicPolicy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dashboard_shows_api_queue_and_worker_metrics(synthesized, settings):
    dashboard = synthesized.only("AWS::CloudWatch::Dashboard")
    assert dashboard["DashboardName"] == settings.prefix
    body = json.dumps(dashboard["DashboardBody"])
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Invocations",
        "Errors",
        "Throttles",
        "Duration",
        "ConcurrentExecutions",
        "Latency",
    ):
        assert metric in body, metric
