"""The alarm evaluator of the monitoring tests (tests/alarms.py) against CloudWatch's documented behaviour: the
statistic over a period, M out of N datapoints, each treatment of missing data, metric math and exact dimensions."""

from __future__ import annotations

import pytest

from alarms import Alarm, Samples

QUEUE = {"QueueName": "orders"}


def alarm(**overrides) -> Alarm:
    properties = {
        "AlarmName": "test",
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": "orders"}],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    return Alarm(properties | overrides, reference=None)


def depth(values_by_minute: dict[int, list[float]], identity: dict[str, str] = QUEUE) -> Samples:
    samples = Samples()
    for minute, values in values_by_minute.items():
        for n, value in enumerate(values):
            samples.publish("AWS/SQS", "ApproximateNumberOfMessagesVisible", identity, minute * 60 + n, value)
    return samples


def test_the_statistic_is_taken_over_each_period():
    samples = depth({0: [2, 3], 1: [4, 1]})  # Sum 5 and 5, Maximum 3 and 4
    assert alarm(Statistic="Sum").states(samples, 120) == ["ALARM", "ALARM"]
    assert alarm(Statistic="Maximum").states(samples, 120) == ["OK", "OK"]


def test_m_out_of_n_datapoints_must_breach():
    samples = depth({0: [9], 1: [0], 2: [9], 3: [0], 4: [0]})
    two_of_three = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    assert two_of_three.states(samples, 300) == ["OK", "OK", "ALARM", "OK", "OK"]  # 9,0,9 then 0,9,0


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [
        ("notBreaching", ["OK", "OK", "OK"]),
        ("breaching", ["ALARM", "ALARM", "ALARM"]),
        ("missing", ["INSUFFICIENT_DATA", "INSUFFICIENT_DATA", "INSUFFICIENT_DATA"]),
        ("ignore", ["INSUFFICIENT_DATA", "INSUFFICIENT_DATA", "INSUFFICIENT_DATA"]),
    ],
)
def test_a_period_without_data_counts_as_treat_missing_data_says(treatment, expected):
    assert alarm(TreatMissingData=treatment).states(Samples(), 180) == expected


def test_ignore_keeps_the_last_state_through_missing_data():
    assert alarm(TreatMissingData="ignore").states(depth({0: [9]}), 180) == ["ALARM", "ALARM", "ALARM"]


def test_a_metric_under_other_dimensions_is_not_the_alarms():
    assert alarm().states(depth({0: [9]}, {"QueueName": "other"}), 60) == ["OK"]


def test_diff_has_no_value_for_the_first_period_of_the_evaluation_range():
    math = {
        "Metrics": [
            {"Id": "e", "Expression": "DIFF(d)", "ReturnData": True},
            {
                "Id": "d",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [{"Name": "QueueName", "Value": "orders"}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            },
        ],
        "Threshold": 1,
    }
    growing = depth({0: [0], 1: [1], 2: [1]})
    base = {k: v for k, v in alarm().properties.items() if k not in ("Namespace", "MetricName", "Dimensions")}
    over_two = Alarm(base | math | {"EvaluationPeriods": 2}, reference=None)
    over_one = Alarm(base | math | {"EvaluationPeriods": 1}, reference=None)
    assert over_two.states(growing, 180) == ["OK", "ALARM", "OK"]
    assert over_one.states(growing, 180) == ["OK", "OK", "OK"]  # never a previous datapoint to subtract
