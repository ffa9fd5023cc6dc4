"""Alarms reach the people on call: named for what they watch, published to an SNS topic that CloudWatch may
actually publish to (topic policy, and key policy when encrypted), plus a dashboard per stage and region."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest

from conftest import DAY
from local.policies import ACCOUNT, OTHER_ACCOUNT, REGION, Request, decide, resolve
from test_worker import FakeContext, load_handler, record

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
# What each alarm watches: (namespace, metric) of its metric, or of every metric of its math expression.
EXPECTED_ALARMS = {
    "dlq-not-empty": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "dlq-new-messages": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "oldest-message-too-old": {("AWS/SQS", "ApproximateAgeOfOldestMessage")},
    "worker-errors": {("AWS/Lambda", "Errors")},
    "worker-throttles": {("AWS/Lambda", "Throttles")},
    "api-errors": None,  # per flavour, below
}
RESULTS_ALARMS = {  # result_topic = sns
    # The worker's own metric (worker/results.py), in a namespace of its stage: another stage's must not fire it.
    "results-publish-failed": {("{project}-{stage}", "ResultsPublishFailed")},
    "results-delivery-failed": {("AWS/SNS", "NumberOfNotificationsFailed")},
}
API_FAILURES = {
    "http": {("AWS/ApiGateway", "5xx")},
    "rest": {("AWS/ApiGateway", "5XXError")},
    "websocket": {("AWS/ApiGateway", "IntegrationError"), ("AWS/ApiGateway", "ExecutionError")},
}


def watched(alarm: dict) -> set[tuple[str, str]]:
    if "MetricName" in alarm:
        return {(alarm["Namespace"], alarm["MetricName"])}
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }


def alarms(synthesized) -> dict[str, dict]:
    """Alarm properties by AlarmName."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
    }


def alarm_topic_id(synthesized) -> str:
    return synthesized.named("AWS::SNS::Topic", "TopicName", f"{synthesized.stack.settings.prefix}-alarms")


def topic_policy(synthesized) -> dict:
    [policy] = [
        p
        for p in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": alarm_topic_id(synthesized)}]
    ]
    return policy["Properties"]["PolicyDocument"]


def publish(synthesized, alarm_name: str, *, account: str = ACCOUNT, tls: bool = True) -> Request:
    """The request CloudWatch makes when an alarm of `account` changes state (SNS sees the alarm as the source)."""
    return Request(
        principal=CLOUDWATCH,
        action="SNS:Publish",
        resource=f"<Ref {alarm_topic_id(synthesized)}>",
        context={
            "aws:SourceAccount": account,
            "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{alarm_name}",
            "aws:SecureTransport": str(tls).lower(),
        },
    )


def test_alarms_are_named_for_the_stack_and_what_they_watch(synthesized, answers, prefix):
    found = {name: watched(alarm) for name, alarm in alarms(synthesized).items()}
    expected = {f"{prefix}-{what}": metrics for what, metrics in EXPECTED_ALARMS.items()}
    expected[f"{prefix}-api-errors"] = API_FAILURES[answers["api_flavour"]]
    if answers["result_topic"] == "sns":
        for what, metrics in RESULTS_ALARMS.items():
            expected[f"{prefix}-{what}"] = {
                (ns.format(project=answers["project_name"], stage=answers["stage"]), m) for ns, m in metrics
            }
    assert found == expected


def test_the_results_publish_alarm_watches_this_stages_worker_only(with_options, prefix):
    """Powertools adds the `service` dimension to every metric: with the stage in it (and in the namespace), a dev
    worker's failed publishes do not fire prod's alarm in the same account."""
    alarm = alarms(with_options)[f"{prefix}-results-publish-failed"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (prefix, "ResultsPublishFailed")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": prefix}]


def test_the_results_publish_alarm_watches_the_metric_the_worker_emits(with_options, prefix, monkeypatch, dlq_url):
    """The real worker, run with the synthesized function's Powertools variables, fails a publish: the EMF line it
    prints must put the alarm's metric in the alarm's namespace under the alarm's dimensions, or it never fires."""
    variables = with_options.only("AWS::Lambda::Function")["Environment"]["Variables"]
    powertools = {name: variables[name] for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")}
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"
    # Set before the handler is (re)loaded: Powertools reads them when Metrics() is made, at import.
    handler = load_handler(
        monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, RESULT_TOPIC_ARN=missing, **powertools
    )
    stdout = io.StringIO()  # Lambda sends the worker's stdout, EMF lines included, to CloudWatch
    with contextlib.redirect_stdout(stdout), pytest.raises(Exception, match="All records failed"):
        handler.lambda_handler({"Records": [record('{"a": 1}')]}, FakeContext())
    [emf] = [json.loads(line) for line in stdout.getvalue().splitlines() if '"_aws"' in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    alarm = alarms(with_options)[f"{prefix}-results-publish-failed"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert alarm["MetricName"] in {metric["Name"] for metric in directive["Metrics"]}
    assert sum(emf[alarm["MetricName"]]) == 1
    # CloudWatch keeps a metric per dimension set emitted; the alarm matches one whose names and values are its own.
    watched_dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert sorted(watched_dimensions) in [sorted(names) for names in directive["Dimensions"]]
    assert {name: emf[name] for name in watched_dimensions} == watched_dimensions


def test_every_alarm_evaluates_one_minute_periods(synthesized):
    """A math expression's own period (5 minutes unless set) silently overrides its metrics' periods."""
    for name, alarm in alarms(synthesized).items():
        periods = (
            [alarm["Period"]]
            if "Period" in alarm
            else [m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m]
        )
        assert set(periods) == {60}, name


def test_every_alarm_notifies_the_topic_on_alarm_and_recovery(synthesized):
    topic_id = alarm_topic_id(synthesized)
    for alarm in alarms(synthesized).values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]


def test_cloudwatch_may_publish_every_alarm_of_this_stack_to_the_topic(synthesized):
    """An SNS topic policy replaces the default one: without an Allow for CloudWatch no notification is sent."""
    for name in alarms(synthesized):
        assert decide(topic_policy(synthesized), publish(synthesized, name)) == "Allow", name


def test_the_topic_refuses_other_accounts_other_alarms_and_plain_http(synthesized, prefix):
    policy = topic_policy(synthesized)
    name = f"{prefix}-dlq-not-empty"
    assert decide(policy, publish(synthesized, name, account=OTHER_ACCOUNT)) == "ImplicitDeny"
    assert decide(policy, publish(synthesized, "someone-elses-alarm")) == "ImplicitDeny"
    assert decide(policy, publish(synthesized, name, tls=False)) == "Deny"


def test_the_alarm_topic_is_encrypted_only_with_a_key_cloudwatch_may_use(synthesized, answers):
    """CloudWatch cannot use the AWS managed SNS key (alias/aws/sns): the topic is encrypted with the customer key,
    whose policy lets CloudWatch make the data key SNS needs, or not at all."""
    topic = synthesized.json["Resources"][alarm_topic_id(synthesized)]["Properties"]
    if answers["queue_encryption"] != "kms-customer":
        assert "KmsMasterKeyId" not in topic
        return
    key_id = synthesized.only_id("AWS::KMS::Key")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key_policy = synthesized.only("AWS::KMS::Key")["KeyPolicy"]
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert decide(key_policy, Request(CLOUDWATCH, action, "*")) == "Allow", action
    assert decide(key_policy, Request(CLOUDWATCH, "kms:ScheduleKeyDeletion", "*")) == "ImplicitDeny"


def test_alarm_email_is_subscribed_exactly_when_given(synthesized, answers):
    subscriptions = [s["Properties"] for s in synthesized.resources("AWS::SNS::Subscription").values()]
    expected = [answers["alarm_email"]] if answers["alarm_email"] else []
    assert [s["Endpoint"] for s in subscriptions if s["Protocol"] == "email"] == expected


def test_dead_letter_alarms_watch_the_dlq_for_any_message_and_for_new_ones(synthesized, prefix, expected):
    dlq_name = {"Fn::GetAtt": [synthesized.queue_id(expected.dlq_name), "QueueName"]}
    not_empty = alarms(synthesized)[f"{prefix}-dlq-not-empty"]
    assert not_empty["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}]
    assert (not_empty["Threshold"], not_empty["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    # Dead-lettered messages are not counted in NumberOfMessagesSent: new ones show as a growing depth.
    new = alarms(synthesized)[f"{prefix}-dlq-new-messages"]
    [expression] = [m["Expression"] for m in new["Metrics"] if "Expression" in m]
    [depth] = [m for m in new["Metrics"] if "MetricStat" in m]
    assert expression == f"DIFF({depth['Id']})"
    assert depth["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}]
    assert (new["Threshold"], new["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert new["EvaluationPeriods"] == 2 and new["DatapointsToAlarm"] == 1  # DIFF needs the minute before


def oldest_message_threshold(answers: dict) -> int:
    """AWS guidance and this design: every retry takes a visibility timeout (6 x worker timeout + batching window);
    the alarm fires before half the retention has passed, since a message can never get older than the retention."""
    visibility = 6 * int(answers["worker_timeout_seconds"]) + int(answers["batching_window_seconds"])
    return min(visibility * int(answers["dlq_retries"]), int(answers["queue_retention_days"]) * DAY // 2)


def test_oldest_message_alarm_fires_within_the_retry_budget_and_the_retention(synthesized, answers, prefix):
    alarm = alarms(synthesized)[f"{prefix}-oldest-message-too-old"]
    assert alarm["Threshold"] == oldest_message_threshold(answers)
    assert 0 < alarm["Threshold"] < int(answers["queue_retention_days"]) * DAY


@pytest.mark.parametrize("worker_timeout_seconds", [1, 900])
@pytest.mark.parametrize("dlq_retries", [1, 1000])
@pytest.mark.parametrize("queue_retention_days", [1, 14])
def test_oldest_message_alarm_can_fire_at_the_extreme_answers(
    settings, answers, worker_timeout_seconds, dlq_retries, queue_retention_days
):
    extreme = {
        "worker_timeout_seconds": worker_timeout_seconds,
        "dlq_retries": dlq_retries,
        "queue_retention_days": queue_retention_days,
        "batching_window_seconds": 300 if worker_timeout_seconds == 900 else 0,
    }
    threshold = dataclasses.replace(settings, **extreme).oldest_message_alarm_seconds
    assert threshold == oldest_message_threshold(answers | extreme)
    assert threshold < queue_retention_days * DAY


def test_dashboard_is_named_for_the_stack_and_its_region(synthesized, prefix):
    """Dashboards are global to an account: the same stage deployed in two regions must not share one."""
    name = synthesized.only("AWS::CloudWatch::Dashboard")["DashboardName"]
    assert resolve(name, region="eu-west-1") == f"{prefix}-eu-west-1"
    assert resolve(name, region="us-east-1") == f"{prefix}-us-east-1"


def test_dashboard_shows_api_queue_and_worker_metrics(synthesized):
    body = json.dumps(synthesized.only("AWS::CloudWatch::Dashboard")["DashboardBody"])
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Invocations",
        "Errors",
        "Throttles",
        "Duration",
        "ConcurrentExecutions",
    ):
        assert metric in body, metric


def test_dashboard_api_widget_labels_say_what_each_flavour_counts(synthesized, answers):
    body = json.dumps(synthesized.only("AWS::CloudWatch::Dashboard")["DashboardBody"])
    labels = {
        "http": ['\\"label\\":\\"4xx\\"', '\\"label\\":\\"5xx\\"'],
        "rest": ['\\"label\\":\\"4xx\\"', '\\"label\\":\\"5xx\\"'],
        "websocket": ['\\"label\\":\\"ClientError\\"', '\\"label\\":\\"IntegrationError + ExecutionError\\"'],
    }[answers["api_flavour"]]
    for label in labels:
        assert label in body, label


def test_the_oldest_message_alarm_watches_the_work_queue(synthesized, expected, prefix):
    alarm = alarms(synthesized)[f"{prefix}-oldest-message-too-old"]
    queue_name = {"Fn::GetAtt": [synthesized.queue_id(expected.queue_name), "QueueName"]}
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]
