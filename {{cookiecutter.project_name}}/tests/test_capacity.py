"""make capacity: the drain rate, backlog and expiry arithmetic, warnings exactly where the settings call for them, and
the README's "Capacity" section as the tool prints it for the settings."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from {{ cookiecutter.__package_name }}.settings import ANSWERS

from ops import capacity

# 10 x 10 / 1 s = a drain rate of 100 messages/s, whatever was answered at generation.
BASE = replace(
    ANSWERS,
    queue_type="standard",
    batch_size=10,
    max_concurrency=10,
    typical_invocation_seconds=1.0,
    worker_timeout_seconds=30,
    api_rate_limit=100,
    api_burst_limit=200,
    queue_retention_days=1,
    result_topic="none",
    idempotency="none",
)


def kinds(settings) -> set[str]:
    """Which warnings the settings get: grows (without bound), expires, times out."""
    found = capacity.capacity(settings).warnings
    assert len(found) == len(set(found))
    words = {
        "grows": "without bound",
        "expires": "expire",
        "times out": "time out",
        "publish quota": "Publish requests/s",
        "table writes": "new on-demand table",
    }
    return {kind for kind, phrase in words.items() for warning in found if phrase in warning}


def test_drain_rate_is_batch_times_concurrency_over_invocation_time():
    assert capacity.capacity(BASE).drain_rate == 100
    other = replace(BASE, batch_size=5, max_concurrency=40, typical_invocation_seconds=0.5)
    assert capacity.capacity(other).drain_rate == 400


def test_a_backlog_grows_by_the_api_rate_above_the_drain_rate_from_a_full_burst():
    figures = capacity.capacity(replace(BASE, api_rate_limit=400))
    assert figures.surplus_rate == 300
    assert figures.backlog_after(60) == 200 + 300 * 60
    assert figures.backlog_after(3600) == 200 + 300 * 3600


def test_messages_expire_once_the_backlog_exceeds_what_drains_within_the_retention():
    figures = capacity.capacity(replace(BASE, api_rate_limit=400))
    assert figures.retention_backlog == 100 * 86_400
    assert figures.expiry_after_seconds == pytest.approx((100 * 86_400 - 200) / 300)
    assert capacity.capacity(BASE).expiry_after_seconds is None  # the API's full rate equals the drain rate
    one_burst_too_many = replace(BASE, api_rate_limit=1, api_burst_limit=100 * 86_400 + 1)
    assert capacity.capacity(one_burst_too_many).expiry_after_seconds == 0


def test_fifo_drains_one_batch_per_message_group_at_a_time():
    fifo = capacity.capacity(replace(BASE, queue_type="fifo", typical_invocation_seconds=0.5))
    assert fifo.group_drain_rate == 20
    assert dict(capacity.rows(fifo))["message groups needed"].startswith("at least 10 with messages waiting")
    assert "at least 5, evenly used" in dict(capacity.rows(fifo))["message groups needed"]
    assert "300 messages/s per group" in dict(capacity.rows(fifo))["one message group"]
    assert capacity.capacity(BASE).group_drain_rate is None
    assert "one message group" not in dict(capacity.rows(capacity.capacity(BASE)))


def test_lambda_scales_up_by_300_a_minute_from_5():
    assert capacity.capacity(replace(BASE, max_concurrency=5)).scale_up_minutes == 0
    assert capacity.capacity(replace(BASE, max_concurrency=305)).scale_up_minutes == 1
    assert capacity.capacity(replace(BASE, max_concurrency=1000)).scale_up_minutes == 4


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, set()),  # the API's full rate is exactly the drain rate: a burst's backlog stays, it does not grow
        ({"api_rate_limit": 101}, {"grows", "expires"}),
        ({"max_concurrency": 9}, {"grows", "expires"}),
        ({"typical_invocation_seconds": 1.2}, {"grows", "expires"}),
        ({"api_rate_limit": 1, "api_burst_limit": 100 * 86_400 + 1}, {"expires"}),
        ({"api_rate_limit": 1, "api_burst_limit": 100 * 86_400}, set()),
        ({"worker_timeout_seconds": 1}, {"times out"}),
        ({"worker_timeout_seconds": 2}, set()),
        ({"queue_type": "fifo"}, set()),
        # SNS's default Publish quota (1,500/s in most regions), at the rate the worker keeps up with.
        ({"result_topic": "sns", "max_concurrency": 1000, "api_rate_limit": 1501}, {"publish quota"}),
        ({"result_topic": "sns", "max_concurrency": 1000, "api_rate_limit": 1500}, set()),
        ({"result_topic": "sns", "max_concurrency": 1000, "api_rate_limit": 5000}, {"publish quota"}),
        ({"max_concurrency": 1000, "api_rate_limit": 5000}, set()),
        # A new on-demand table's 4,000 writes/s, two per message.
        ({"idempotency": "dynamodb", "max_concurrency": 1000, "api_rate_limit": 2001}, {"table writes"}),
        ({"idempotency": "dynamodb", "max_concurrency": 1000, "api_rate_limit": 2000}, set()),
        # The worker cannot publish faster than it drains (100/s here): the API's rate alone is no hazard.
        ({"result_topic": "sns", "api_rate_limit": 1600, "api_burst_limit": 1}, {"grows", "expires"}),
    ],
)
def test_warnings_appear_exactly_when_the_settings_call_for_them(changes, expected):
    assert kinds(replace(BASE, **changes)) == expected


def test_an_invocation_time_of_zero_is_refused():
    with pytest.raises(ValueError, match="typical_invocation_seconds"):
        capacity.capacity(replace(BASE, typical_invocation_seconds=0))


# BASE at 400 requests/s: 300/s more than the 100/s it drains; the 100 x 86,400 messages it drains in the day of
# retention are exceeded (from the 200 of a full burst) after (8,640,000 - 200) / 300 s = 7.9998 h.
OVERLOADED_WARNINGS = [
    "the API's full rate (400/s) exceeds the drain rate (100/s): at that rate the queue grows by 300 messages/s"
    " without bound; raise max_concurrency or batch_size, shorten the invocations, or lower api_rate_limit",
    "after 8 h at the API's full rate, messages expire unprocessed: the backlog then exceeds the 8,640,000 messages"
    " the worker drains within the queue's retention (1 day); SQS deletes them, they never reach the dead-letter"
    " queue",
]


def test_main_prints_the_figures_and_warnings_and_exits_0(monkeypatch, capsys, answers):
    monkeypatch.setattr(capacity, "ANSWERS", replace(BASE, api_rate_limit=400))
    assert capacity.main(["--stage", "qa"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Capacity of {answers['project_name']}-qa-queue ")
    assert re.search(r"^  drain rate \(bound\) +100 messages/s = batch_size 10 x max_concurrency 10 / 1 s", out, re.M)
    assert "after 1 minute at full rate" in out
    assert [line for line in out.splitlines() if line.startswith("WARNING: ")] == [
        f"WARNING: {warning}" for warning in OVERLOADED_WARNINGS
    ]


def test_main_says_when_there_is_no_warning(monkeypatch, capsys):
    monkeypatch.setattr(capacity, "ANSWERS", BASE)
    assert capacity.main([]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and out.endswith("No warnings.\n")


def test_the_readme_section_is_what_make_capacity_prints_for_settings_py(capsys, answers):
    assert capacity.main(["--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| figure | value |")
    batch, concurrency = int(answers["batch_size"]), int(answers["max_concurrency"])  # a 1 s invocation, by default
    drain = f"| drain rate (bound) | {batch * concurrency:,} messages/s = batch_size {batch} x max_concurrency"
    assert drain in printed
    assert capacity.readme_section(capacity.README.read_text(encoding="utf-8")) == printed, (
        "README.md's Capacity section is stale: run `make capacity ARGS=--readme`"
    )


def test_readme_rewrites_only_the_section_and_prints_the_warnings(monkeypatch, capsys, tmp_path):
    overloaded = replace(BASE, api_rate_limit=400)
    readme = tmp_path / "README.md"
    readme.write_text(f"# before\n{capacity.START}\nold\n{capacity.END}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(capacity, "README", readme)
    monkeypatch.setattr(capacity, "ANSWERS", overloaded)
    assert capacity.main(["--readme"]) == 0
    markdown = capacity.to_markdown(capacity.capacity(overloaded))
    assert readme.read_text(encoding="utf-8") == f"# before\n{capacity.START}\n{markdown}{capacity.END}\nafter\n"
    assert "**WARNING:** the API's full rate (400/s) exceeds the drain rate (100/s)" in markdown
    assert capsys.readouterr().out.splitlines() == [f"WARNING: {w}" for w in OVERLOADED_WARNINGS]
    for warning in OVERLOADED_WARNINGS:
        assert f"**WARNING:** {warning}" in markdown


def test_a_readme_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="capacity:start"):
        capacity.with_readme_section("# no section\n", "| figure | value |\n")
