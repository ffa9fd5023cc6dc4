"""Capacity sizing: how fast the worker can drain the queue, against what the API lets in.

    make capacity                   # the figures and warnings for settings.py
    make capacity ARGS=--markdown   # the same as README.md's "Capacity" section holds them
    make capacity ARGS=--readme     # rewrite that section after changing settings.py

Bounds, not measurements: every invocation takes typical_invocation_seconds (settings.py) for a full batch, and
max_concurrency of them run at once. Warnings are advice: the exit status is 0 with them too.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from {{ cookiecutter.__package_name }}.settings import ANSWERS, DAY_SECONDS, Settings

# Lambda's SQS poller starts with 5 concurrent batches and adds up to 300 a minute while messages wait (Lambda guide,
# "Configuring scaling behavior for SQS event source mappings").
LAMBDA_FIRST_BATCHES = 5
LAMBDA_SCALE_UP_PER_MINUTE = 300
FIFO_GROUP_QUOTA = 300  # messages/s per message group, SQS high-throughput FIFO
# SNS Publish requests/s per account and region by default (SNS quotas): 30,000 in us-east-1, 9,000 in us-west-2
# and eu-west-1, 1,500 elsewhere; the lowest is assumed. Raise it with a quota increase.
SNS_PUBLISH_QUOTA = 1500
# A new on-demand DynamoDB table serves up to 4,000 write request units/s at first, and adapts to a higher peak over
# minutes; Powertools idempotency writes twice per message (in progress, then completed).
DYNAMODB_NEW_TABLE_WRITES = 4000
IDEMPOTENCY_WRITES_PER_MESSAGE = 2
FULL_RATE_PERIODS = ((60, "1 minute"), (60 * 60, "1 hour"))  # how long the API runs at full rate, for the backlog
README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- capacity:start -->", "<!-- capacity:end -->"


@dataclass(frozen=True)
class Capacity:
    """The bounds of one Settings, in messages and seconds (`capacity` computes them)."""

    settings: Settings
    drain_rate: float  # messages/s the worker takes at most
    surplus_rate: float  # API's full rate - drain rate: above 0 the backlog grows by this much every second
    retention_backlog: float  # what the worker drains within the queue's retention: a larger backlog expires
    expiry_after_seconds: float | None  # how long the API can run at full rate before messages expire; None: never
    scale_up_minutes: int  # until Lambda runs max_concurrency invocations, once messages wait
    group_drain_rate: float | None  # FIFO: one message group's bound
    warnings: tuple[str, ...]

    def backlog_after(self, seconds: float) -> float:
        """Messages waiting after `seconds` at the API's full rate, starting with one full burst (oldest first)."""
        return max(0.0, self.settings.api_burst_limit + self.surplus_rate * seconds)


def capacity(settings: Settings) -> Capacity:
    if settings.typical_invocation_seconds <= 0:
        raise ValueError(f"typical_invocation_seconds must be above 0; got {settings.typical_invocation_seconds}")
    drain = settings.batch_size * settings.max_concurrency / settings.typical_invocation_seconds
    surplus = settings.api_rate_limit - drain
    retention_backlog = drain * settings.queue_retention_seconds
    # A message waits (backlog ahead of it) / drain rate: it expires once the backlog passes retention_backlog.
    if settings.api_burst_limit > retention_backlog:
        expiry: float | None = 0.0
    elif surplus > 0:
        expiry = (retention_backlog - settings.api_burst_limit) / surplus
    else:
        expiry = None
    scale_up = max(0, settings.max_concurrency - LAMBDA_FIRST_BATCHES)  # beyond the first batches
    figures = Capacity(
        settings=settings,
        drain_rate=drain,
        surplus_rate=surplus,
        retention_backlog=retention_backlog,
        expiry_after_seconds=expiry,
        scale_up_minutes=math.ceil(scale_up / LAMBDA_SCALE_UP_PER_MINUTE),
        group_drain_rate=settings.batch_size / settings.typical_invocation_seconds if settings.fifo else None,
        warnings=(),
    )
    return replace(figures, warnings=tuple(warnings(figures)))


def warnings(c: Capacity) -> list[str]:
    """Where the settings let the queue outgrow the worker, or lose messages, at the API's full rate."""
    s, found = c.settings, []
    if s.typical_invocation_seconds >= s.worker_timeout_seconds:
        found.append(
            f"typical_invocation_seconds {_number(s.typical_invocation_seconds)} reaches worker_timeout_seconds "
            f"{s.worker_timeout_seconds}: invocations time out, and their batches return to the queue and go to the "
            f"dead-letter queue after {s.dlq_retries} receive(s); raise the timeout or lower batch_size"
        )
    steady = min(s.api_rate_limit, c.drain_rate)  # messages/s the worker processes with the API at its full rate
    if s.result_topic == "sns" and steady > SNS_PUBLISH_QUOTA:
        found.append(
            f"the worker publishes up to {_number(steady)} results/s to SNS, above the {SNS_PUBLISH_QUOTA:,} Publish "
            "requests/s SNS allows by default in most regions: throttled publishes fail their messages, which are "
            "retried and may be dead-lettered; request a quota increase (or deploy where it is higher)"
        )
    writes = steady * IDEMPOTENCY_WRITES_PER_MESSAGE
    if s.idempotency == "dynamodb" and writes > DYNAMODB_NEW_TABLE_WRITES:
        found.append(
            f"idempotency writes {_number(writes)} items/s to DynamoDB (2 per message), above the "
            f"{DYNAMODB_NEW_TABLE_WRITES:,} a new on-demand table serves at first: throttled writes fail their "
            "messages until the table has adapted; set the table's warm throughput before the traffic comes"
        )
    if c.surplus_rate > 0:
        found.append(
            f"the API's full rate ({s.api_rate_limit:,}/s) exceeds the drain rate ({_number(c.drain_rate)}/s): at "
            f"that rate the queue grows by {_number(c.surplus_rate)} messages/s without bound; raise max_concurrency "
            "or batch_size, shorten the invocations, or lower api_rate_limit"
        )
    if c.expiry_after_seconds == 0:
        found.append(
            f"one burst of {s.api_burst_limit:,} messages takes "
            f"{_duration(s.api_burst_limit / c.drain_rate)} to drain, longer than the queue's retention "
            f"({_duration(s.queue_retention_seconds)}): messages expire unprocessed (SQS deletes them; they never "
            "reach the dead-letter queue)"
        )
    elif c.expiry_after_seconds is not None:
        found.append(
            f"after {_duration(c.expiry_after_seconds)} at the API's full rate, messages expire unprocessed: the "
            f"backlog then exceeds the {_number(c.retention_backlog)} messages the worker drains within the "
            f"queue's retention ({_duration(s.queue_retention_seconds)}); SQS deletes them, they never reach the "
            "dead-letter queue"
        )
    return found


def rows(c: Capacity) -> list[tuple[str, str]]:
    """The figures as (what, value) pairs, for both renderings."""
    s, drain, burst = c.settings, c.drain_rate, c.settings.api_burst_limit
    if c.surplus_rate < 0:
        with_traffic = f"in {_duration(burst / -c.surplus_rate)}"
    else:
        with_traffic = "never (it stays)" if c.surplus_rate == 0 else "never (it grows)"
    found = [
        (
            "drain rate (bound)",
            f"{_number(drain)} messages/s = batch_size {s.batch_size} x max_concurrency {s.max_concurrency} / "
            f"{_number(s.typical_invocation_seconds)} s per invocation (typical_invocation_seconds)",
        ),
        (
            "API",
            f"{s.api_rate_limit:,} requests/s steady ({_number(100 * s.api_rate_limit / drain)} % of the drain rate), "
            f"bursts of up to {burst:,}",
        ),
        (
            f"one burst of {burst:,}",
            f"drains in {_duration(burst / drain)} with nothing else arriving, {with_traffic} with the API at its "
            "full rate meanwhile",
        ),
    ]
    if c.surplus_rate > 0:
        found += [
            (
                f"after {label} at full rate",
                f"leaves {_number(c.backlog_after(seconds))} messages waiting, drained "
                f"{_duration(c.backlog_after(seconds) / drain)} after the traffic stops",
            )
            for seconds, label in FULL_RATE_PERIODS
        ]
    expiry, minutes = c.expiry_after_seconds, c.scale_up_minutes
    found += [
        (
            "retention",
            f"{_duration(s.queue_retention_seconds)}: the worker drains {_number(c.retention_backlog)} messages in "
            "that time, a larger backlog expires; at the API's full rate "
            + ("the backlog never gets there" if expiry is None else f"it gets there in {_duration(expiry)}"),
        ),
        (
            "scale-up",
            f"{s.max_concurrency} concurrent invocations "
            + ("at once" if minutes == 0 else f"about {_plural(minutes, 'minute')} after messages start waiting")
            + f" (Lambda starts with {LAMBDA_FIRST_BATCHES}, adds up to {LAMBDA_SCALE_UP_PER_MINUTE} a minute)",
        ),
    ]
    if c.group_drain_rate is not None:
        per_group = min(c.group_drain_rate, FIFO_GROUP_QUOTA)
        found += [
            (
                "one message group",
                f"{_number(c.group_drain_rate)} messages/s at most: Lambda processes one batch per group at a time; "
                f"SQS high-throughput FIFO allows {FIFO_GROUP_QUOTA} messages/s per group",
            ),
            (
                "message groups needed",
                f"at least {s.max_concurrency} with messages waiting, for the full drain rate; at least "
                f"{math.ceil(s.api_rate_limit / per_group):,}, evenly used, for each to keep up with the API's full "
                "rate",
            ),
        ]
    return found


def to_markdown(c: Capacity) -> str:
    lines = ["| figure | value |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows(c)), ""]
    lines += [f"**WARNING:** {warning}\n" for warning in c.warnings] or ["No warnings for these settings.\n"]
    return "\n".join(lines)


def to_text(c: Capacity) -> str:
    figures = rows(c)
    width = max(len(what) for what, _ in figures)
    lines = [f'Capacity of {c.settings.queue_name} (settings.py; README.md, "Capacity")']
    lines += [f"  {what:<{width}}  {value}" for what, value in figures]
    lines += [f"WARNING: {warning}" for warning in c.warnings] or ["No warnings."]
    return "\n".join(lines) + "\n"


def readme_section(readme: str) -> str:
    """What README.md holds between the capacity markers."""
    return readme.split(START, 1)[1].split(END, 1)[0].removeprefix("\n")


def with_readme_section(readme: str, markdown: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} section")
    head, rest = readme.split(START, 1)
    return f"{head}{START}\n{markdown}{END}{rest.split(END, 1)[1]}"


def _number(x: float) -> str:
    """1,234 from 100 up, three significant digits below (12.5, 0.0222)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _duration(seconds: float) -> str:
    if seconds >= DAY_SECONDS:
        return _plural(seconds / DAY_SECONDS, "day")
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{_number(seconds / size)} {unit}"
    return f"{_number(seconds)} s"


def _plural(count: float, noun: str) -> str:
    return f"{_number(count)} {noun}" + ("" if _number(count) == "1" else "s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=None, help=f"stage to size (default {ANSWERS.stage})")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print the README section")
    output.add_argument("--readme", action="store_true", help="rewrite the README section, print only warnings")
    args = parser.parse_args(argv)
    figures = capacity(ANSWERS.for_stage(args.stage))
    if args.readme:
        readme = with_readme_section(README.read_text(encoding="utf-8"), to_markdown(figures))
        README.write_text(readme, encoding="utf-8")
        for warning in figures.warnings:  # at generation too: the hook writes the section this way
            print(f"WARNING: {warning}")
    else:
        print(to_markdown(figures) if args.markdown else to_text(figures), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
