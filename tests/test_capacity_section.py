"""The post-generation hook fills the README's "Capacity" section from the answers, with warnings exactly when the
answers let the queue outgrow the worker, and prints them."""

from __future__ import annotations

import pytest

START, END = "<!-- capacity:start -->", "<!-- capacity:end -->"


def capacity_section(project) -> str:
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == readme.count(END) == 1
    return readme.split(START, 1)[1].split(END, 1)[0]


def test_the_default_answers_get_figures_and_no_warning(cookies, capfd):
    result = cookies.bake()
    assert result.exit_code == 0, result.exception
    section = capacity_section(result.project_path)
    assert "| drain rate (bound) | 100 messages/s = batch_size 10 x max_concurrency 10 / 1 s" in section
    assert "| API | 100 requests/s steady (100 % of the drain rate), bursts of up to 200 |" in section
    assert "WARNING" not in section and "No warnings for these settings." in section
    assert "WARNING" not in capfd.readouterr().out
    assert not list(result.project_path.rglob("__pycache__"))  # the hook ran the tool without writing bytecode


def test_an_api_faster_than_the_worker_gets_warnings_in_the_readme_and_at_generation(cookies, capfd):
    result = cookies.bake(extra_context={"api_flavour": "rest", "queue_type": "fifo", "api_throttling": "2000"})
    assert result.exit_code == 0, result.exception
    section = capacity_section(result.project_path)
    assert "**WARNING:** the API's full rate (2,000/s) exceeds the drain rate (100/s)" in section
    assert "**WARNING:** after 5.05 h at the API's full rate, messages expire unprocessed" in section
    assert "| one message group | 10 messages/s at most" in section  # FIFO: one batch per group at a time
    printed = [line for line in capfd.readouterr().out.splitlines() if line.startswith("WARNING: ")]
    assert len(printed) == 2 and "without bound" in printed[0]


@pytest.mark.parametrize("flavour", ["http", "rest", "websocket"])
def test_every_flavour_gets_the_section_filled(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    assert result.exit_code == 0, result.exception
    assert capacity_section(result.project_path).startswith("\n| figure | value |\n")
