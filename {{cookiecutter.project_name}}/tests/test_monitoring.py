"""Alarms reach the people on call: named for what they watch, published to an SNS topic that CloudWatch may
actually publish to (topic policy, and key policy when encrypted), plus a dashboard per stage and region."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from dataclasses import dataclass

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from alarms import Samples, emf_lines
from alarms import alarms as evaluated
from conftest import DAY
from local.policies import ACCOUNT, API_ID, OTHER_ACCOUNT, REGION, Request, decide, resolve
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


def worker_metrics(stack, monkeypatch, dlq_url, body: str, **environment: str) -> list[dict]:
    """The EMF lines the real worker prints for one record, run with the synthesized function's Powertools variables
    (set before the handler is reloaded: Powertools reads them when Metrics() is made, at import)."""
    variables = stack.only("AWS::Lambda::Function")["Environment"]["Variables"]
    powertools = {name: variables[name] for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")}
    handler = load_handler(monkeypatch, "standard", DEAD_LETTER_QUEUE_URL=dlq_url, **powertools, **environment)
    stdout = io.StringIO()  # Lambda sends the worker's stdout, EMF lines included, to CloudWatch
    with contextlib.redirect_stdout(stdout), contextlib.suppress(BatchProcessingError):
        handler.lambda_handler({"Records": [record(body)]}, FakeContext())
    return list(emf_lines(stdout.getvalue()))


def test_the_results_publish_alarm_watches_the_metric_the_worker_emits(with_options, prefix, monkeypatch, dlq_url):
    """The real worker fails a publish: the EMF line it prints must put the alarm's metric in the alarm's namespace
    under the alarm's dimensions, or the alarm never fires."""
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"
    [emf] = worker_metrics(with_options, monkeypatch, dlq_url, '{"a": 1}', RESULT_TOPIC_ARN=missing)
    samples = Samples()
    samples.from_emf(emf, at=0)
    alarm = evaluated(with_options.json)[f"{prefix}-results-publish-failed"]
    assert alarm.watches() <= samples.keys()
    assert alarm.states(samples, 60) == ["ALARM"]


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


# An alarm proven on a timeline of ten minutes, as CloudWatch evaluates it: quiet while the stack idles (nothing
# published) and under normal traffic, in ALARM in the minute of the event it exists for, OK again once it is over.
MINUTES, EVENT_MINUTE = 10, 5
API_METRICS = {  # per flavour: (requests, client errors, server errors) as API Gateway names them
    "http": ("Count", ["4xx"], ["5xx"]),
    "rest": ("Count", ["4XXError"], ["5XXError"]),
    "websocket": ("MessageCount", ["ClientError"], ["IntegrationError", "ExecutionError"]),
}


@dataclass
class World:
    """What AWS publishes about this stack's resources, and the worker's own EMF lines, minute by minute."""

    stack: object
    expected: object
    answers: dict
    normal_emf: list[dict]
    failed_publish_emf: list[dict]
    samples: Samples = dataclasses.field(default_factory=Samples)

    def identity(self, namespace: str) -> dict[str, dict[str, str]]:
        """Every dimension AWS knows the stack's resources by, per resource, in `namespace`."""
        api_type = "AWS::ApiGateway::Stage" if self.expected.api_flavour == "rest" else "AWS::ApiGatewayV2::Stage"
        stage = self.stack.only(api_type)["StageName"]
        api = {"ApiName": self.expected.api_name, "Stage": stage} if self.expected.api_flavour == "rest" else {}
        return {
            "AWS/SQS": {
                "queue": {"QueueName": self.expected.queue_name},
                "dlq": {"QueueName": self.expected.dlq_name},
            },
            "AWS/Lambda": {
                "worker": {"FunctionName": self.expected.worker_name, "Resource": self.expected.worker_name}
            },
            "AWS/ApiGateway": {"api": api or {"ApiId": API_ID, "Stage": stage}},
            "AWS/SNS": {"results": {"TopicName": self.expected.results_topic_name}},
        }[namespace]

    def publish(self, minute: int, namespace: str, resource: str, metric: str, value: float) -> None:
        self.samples.publish(namespace, metric, self.identity(namespace)[resource], minute * 60 + 30, value)

    def normal_minute(self, minute: int) -> None:
        """Fifty requests a minute: a few waiting, one client error, nothing failing, nothing dead-lettered."""
        for resource, metric, value in [
            ("queue", "ApproximateNumberOfMessagesVisible", 3),
            ("queue", "ApproximateAgeOfOldestMessage", 2),
            ("queue", "NumberOfMessagesSent", 50),
            ("dlq", "ApproximateNumberOfMessagesVisible", 0),
            ("dlq", "ApproximateAgeOfOldestMessage", 0),
        ]:
            self.publish(minute, "AWS/SQS", resource, metric, value)
        for metric, value in [("Invocations", 5), ("Errors", 0), ("Throttles", 0), ("Duration", 120)]:
            self.publish(minute, "AWS/Lambda", "worker", metric, value)
        requests, client_errors, server_errors = API_METRICS[self.expected.api_flavour]
        self.publish(minute, "AWS/ApiGateway", "api", requests, 50)
        for metric in client_errors:
            self.publish(minute, "AWS/ApiGateway", "api", metric, 1)
        for metric in server_errors:
            self.publish(minute, "AWS/ApiGateway", "api", metric, 0)
        if self.answers["result_topic"] == "sns":
            self.publish(minute, "AWS/SNS", "results", "NumberOfMessagesPublished", 50)
            self.publish(minute, "AWS/SNS", "results", "NumberOfNotificationsFailed", 0)
        for line in self.normal_emf:
            self.samples.from_emf(line, minute * 60 + 30)

    def states(self, alarm, event=None) -> list[str]:
        for minute in range(MINUTES):
            self.normal_minute(minute)
            if event is not None and minute >= EVENT_MINUTE:
                event(self, minute)
        return alarm.states(self.samples, MINUTES * 60)


def once(namespace: str, resource: str, metric: str):
    """One failure in the event's minute (a count that is 0 again afterwards)."""
    return lambda world, minute: world.publish(minute, namespace, resource, metric, 1 if minute == EVENT_MINUTE else 0)


def dead_lettered(world, minute):  # a message reaches the dead-letter queue and waits there
    world.publish(minute, "AWS/SQS", "dlq", "ApproximateNumberOfMessagesVisible", 1)


def falling_behind(world, minute):  # the oldest message only just older than every retry needs, for one minute
    age = oldest_message_threshold(world.answers) if minute == EVENT_MINUTE else 2
    world.publish(minute, "AWS/SQS", "queue", "ApproximateAgeOfOldestMessage", age)


def publish_failed(world, minute):  # the worker's own EMF line for a failed publish (stored by the test below)
    if minute == EVENT_MINUTE:
        for line in world.failed_publish_emf:
            world.samples.from_emf(line, minute * 60 + 30)


def api_failure(metric: str):
    return once("AWS/ApiGateway", "api", metric)


# The event each alarm exists for (an alarm the stack adds without one here fails the test).
EVENTS = {
    "dlq-not-empty": [dead_lettered],
    "dlq-new-messages": [dead_lettered],
    "oldest-message-too-old": [falling_behind],
    "worker-errors": [once("AWS/Lambda", "worker", "Errors")],
    "worker-throttles": [once("AWS/Lambda", "worker", "Throttles")],
    "results-publish-failed": [publish_failed],
    "results-delivery-failed": [once("AWS/SNS", "results", "NumberOfNotificationsFailed")],
}


@pytest.fixture
def world(with_options, expected, answers, monkeypatch, dlq_url):
    """This project's stack with every option (its alarms), and the worker's real EMF lines: for a message it
    processes and publishes, and for one whose result it fails to publish."""
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="results")["TopicArn"]
    normal = worker_metrics(with_options, monkeypatch, dlq_url, '{"a": 1}', RESULT_TOPIC_ARN=topic)
    missing = topic.replace("results", "no-such-topic")
    failed = worker_metrics(with_options, monkeypatch, dlq_url, '{"a": 1}', RESULT_TOPIC_ARN=missing)

    return lambda: World(with_options, expected, answers | {"result_topic": "sns"}, normal, failed)


def test_every_alarm_is_quiet_on_an_idle_stack_and_under_normal_traffic(world, with_options, prefix):
    found = evaluated(with_options.json)
    for name, alarm in found.items():
        assert set(alarm.states(Samples(), MINUTES * 60)) == {"OK"}, f"{name} on an idle stack"
        assert set(world().states(alarm)) == {"OK"}, f"{name} under normal traffic"


def test_every_alarm_fires_in_the_minute_of_its_event_and_recovers(world, with_options, prefix, answers):
    api_events = [api_failure(metric) for metric in API_METRICS[answers["api_flavour"]][2]]
    events = EVENTS | {"api-errors": api_events}  # WebSocket: either kind of server error fires it
    found = evaluated(with_options.json)
    assert {name.removeprefix(f"{prefix}-") for name in found} == set(events)
    for name, alarm in found.items():
        for event in events[name.removeprefix(f"{prefix}-")]:
            states = world().states(alarm, event)
            assert states[:EVENT_MINUTE] == ["OK"] * EVENT_MINUTE, f"{name} before its event"
            assert states[EVENT_MINUTE] == "ALARM", f"{name} in the minute of {event}"
            persistent = event is dead_lettered and name.endswith("dlq-not-empty")
            assert states[-1] == ("ALARM" if persistent else "OK"), f"{name} after {event}: {states}"
