"""CloudWatch, for the tests: what AWS publishes about the stack's resources, and the synthesized alarms evaluated on
it as CloudWatch evaluates them (CloudWatch User Guide, "Using Amazon CloudWatch alarms" and "Metric math").

- `Samples` are the raw values reported at second `t` under one metric: a namespace, a name and one dimension set.
  AWS publishes each service metric under several dimension sets (`PUBLISHED`); the worker's EMF lines under the
  dimension sets each directive names (`from_emf`). An alarm sees a metric only if its namespace, name and
  dimensions (names and values) are exactly one of those.
- A datapoint is the metric's statistic over one period; a metric math expression is computed on datapoints.
- At each period's end the alarm looks at the last EvaluationPeriods datapoints: ALARM when DatapointsToAlarm of
  them breach (ComparisonOperator, Threshold); missing datapoints count as TreatMissingData says (notBreaching:
  good, breaching: bad, ignore: the state stays, missing: INSUFFICIENT_DATA when all are missing).
Only what the stack's alarms use is understood; anything else raises, so a new alarm cannot pass unexamined.
"""

from __future__ import annotations

import ast
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local.policies import ACCOUNT, REGION, arn_of, resolve

# The dimension sets each AWS namespace publishes a resource's metrics under (each service's metrics page).
PUBLISHED = {
    "AWS/SQS": [("QueueName",)],
    "AWS/Lambda": [(), ("FunctionName",), ("FunctionName", "Resource")],
    "AWS/SNS": [("TopicName",)],
    "AWS/ApiGateway": [("ApiName",), ("ApiName", "Stage"), ("ApiId",), ("ApiId", "Stage")],
}
STATISTICS = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "Average": lambda values: sum(values) / len(values),
    "SampleCount": len,
}
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
MISSING = {"notBreaching", "breaching", "ignore", "missing"}
Key = tuple[str, str, frozenset]  # namespace, metric name, dimensions {(name, value)}


def key(namespace: str, name: str, dimensions: dict[str, str]) -> Key:
    return namespace, name, frozenset(dimensions.items())


@dataclass
class Samples:
    """Raw values reported to CloudWatch, by metric key and second."""

    values: dict[Key, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    def publish(self, namespace: str, name: str, identity: dict[str, str], at: float, value: float) -> None:
        """A value AWS reports about a resource (`identity`: every dimension it has), under each dimension set
        it publishes that namespace's metrics under."""
        for names in PUBLISHED[namespace]:
            if set(names) <= set(identity):
                self.values[key(namespace, name, {n: identity[n] for n in names})].append((at, value))

    def from_emf(self, line: dict[str, Any], at: float) -> None:
        """An Embedded Metric Format line, as CloudWatch Logs extracts it: each metric of each directive, under each
        dimension set the directive names, with the values of those dimensions from the line's root."""
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = line[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    for names in directive["Dimensions"]:
                        dimensions = {n: line[n] for n in names}
                        self.values[key(directive["Namespace"], metric["Name"], dimensions)].append((at, value))

    def series(self, metric_key: Key, statistic: str, period: int, periods: int) -> list[float | None]:
        """The metric's datapoints of periods 0 .. periods-1 (None: nothing reported in that period)."""
        if statistic not in STATISTICS:
            raise NotImplementedError(f"statistic not understood: {statistic}")
        buckets: dict[int, list[float]] = defaultdict(list)
        for at, value in self.values.get(metric_key, []):
            buckets[int(at // period)].append(value)
        return [STATISTICS[statistic](buckets[n]) if buckets[n] else None for n in range(periods)]

    def keys(self) -> set[Key]:
        return set(self.values)


def dimension_values(template: dict[str, Any]) -> Any:
    """Ref and Fn::GetAtt as the alarms' dimensions name resources: a queue's or topic's name, a function's name,
    the API's id (local.policies.API_ID), each as deployed."""
    resources, arns = template["Resources"], arn_of(template, ACCOUNT, REGION)

    def reference(logical_id: str, attribute: str | None) -> str:
        kind, properties = resources[logical_id]["Type"], resources[logical_id].get("Properties", {})
        names = {
            ("AWS::SQS::Queue", "QueueName"): "QueueName",
            ("AWS::SNS::Topic", "TopicName"): "TopicName",
            ("AWS::Lambda::Function", None): "FunctionName",
        }
        if (kind, attribute) in names:
            return properties[names[kind, attribute]]
        return arns(logical_id, attribute)

    return reference


def _metric_key(metric: dict[str, Any], reference: Any) -> Key:
    dimensions = {d["Name"]: resolve(d["Value"], reference=reference) for d in metric.get("Dimensions", [])}
    return key(metric["Namespace"], metric["MetricName"], dimensions)


def _math(expression: str, series: dict[str, list[float | None]]) -> list[float | None]:
    """A metric math expression of ids, numbers, + and -, FILL(x, value) and DIFF(x), on aligned datapoints."""

    def evaluate(node: ast.AST) -> list[float | None] | float:
        if isinstance(node, ast.Name):
            return series[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            left, right = evaluate(node.left), evaluate(node.right)
            length = next(len(s) for s in (left, right) if isinstance(s, list))
            lefts = left if isinstance(left, list) else [left] * length
            rights = right if isinstance(right, list) else [right] * length
            sign = 1 if isinstance(node.op, ast.Add) else -1
            return [None if a is None or b is None else a + sign * b for a, b in zip(lefts, rights, strict=True)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
            values, filler = evaluate(node.args[0]), evaluate(node.args[1])
            return [filler if v is None else v for v in values]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DIFF":
            values, previous, out = evaluate(node.args[0]), None, []
            for value in values:  # each value minus the one before it; none for the first
                out.append(None if value is None or previous is None else value - previous)
                previous = value if value is not None else previous
            return out
        raise NotImplementedError(f"metric math not understood: {ast.unparse(node)} in {expression}")

    result = evaluate(ast.parse(expression, mode="eval").body)
    if not isinstance(result, list):
        raise NotImplementedError(f"a constant expression: {expression}")
    return result


@dataclass(frozen=True)
class Alarm:
    """One synthesized AWS::CloudWatch::Alarm."""

    properties: dict[str, Any]
    reference: Any

    @property
    def name(self) -> str:
        return self.properties["AlarmName"]

    def watches(self) -> set[Key]:
        """The metrics the alarm reads."""
        p = self.properties
        if "MetricName" in p:
            return {_metric_key(p, self.reference)}
        return {_metric_key(m["MetricStat"]["Metric"], self.reference) for m in p["Metrics"] if "MetricStat" in m}

    def windows(self, samples: Samples, seconds: int) -> list[list[float | None]]:
        """What the alarm evaluates at the end of each period of the first `seconds`: the last EvaluationPeriods
        datapoints, a math expression computed on its metrics' datapoints of that range only (so DIFF has no value
        for the range's first period)."""
        p = self.properties
        n = p["EvaluationPeriods"]
        if "MetricName" in p:
            points = samples.series(
                _metric_key(p, self.reference), p["Statistic"], p["Period"], math.ceil(seconds / p["Period"])
            )
            return [points[max(0, end - n) : end] for end in range(1, len(points) + 1)]
        stats = {m["Id"]: m for m in p["Metrics"] if "MetricStat" in m}
        [returned] = [m for m in p["Metrics"] if m.get("ReturnData", True)]
        [period] = {m["MetricStat"]["Period"] for m in stats.values()} | (
            {returned["Period"]} if "Period" in returned else set()
        )
        series = {
            id_: samples.series(
                _metric_key(m["MetricStat"]["Metric"], self.reference),
                m["MetricStat"]["Stat"],
                period,
                math.ceil(seconds / period),
            )
            for id_, m in stats.items()
        }
        expression = returned.get("Expression", returned["Id"])
        periods = math.ceil(seconds / period)
        return [
            _math(expression, {id_: points[max(0, end - n) : end] for id_, points in series.items()})
            for end in range(1, periods + 1)
        ]

    def states(self, samples: Samples, seconds: int) -> list[str]:
        """The alarm's state at the end of each period of the first `seconds`, starting from INSUFFICIENT_DATA."""
        p = self.properties
        if p["TreatMissingData"] not in MISSING or p["ComparisonOperator"] not in COMPARISONS:
            raise NotImplementedError(f"{self.name}: {p['TreatMissingData']} / {p['ComparisonOperator']}")
        compare, threshold = COMPARISONS[p["ComparisonOperator"]], p["Threshold"]
        missing, m = p["TreatMissingData"], p.get("DatapointsToAlarm", p["EvaluationPeriods"])
        state, states = "INSUFFICIENT_DATA", []
        for window in self.windows(samples, seconds):
            present = [v for v in window if v is not None]
            if not present and missing in ("ignore", "missing"):
                state = state if missing == "ignore" else "INSUFFICIENT_DATA"
            else:
                breaching = sum(compare(v, threshold) for v in present)
                if len(present) < m:  # too few real datapoints: the missing ones count as the setting says
                    breaching += (len(window) - len(present)) if missing == "breaching" else 0
                state = "ALARM" if breaching >= m else "OK"
            states.append(state)
        return states


def alarms(template: dict[str, Any]) -> dict[str, Alarm]:
    reference = dimension_values(template)
    return {
        r["Properties"]["AlarmName"]: Alarm(r["Properties"], reference)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def emf_lines(text: str) -> Iterable[dict[str, Any]]:
    """The EMF lines of a worker's output (what CloudWatch Logs turns into metrics)."""
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            yield json.loads(line)
