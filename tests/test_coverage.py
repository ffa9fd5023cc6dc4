"""The variants every bake test runs cover what the template promises: every pair of option values, both ends of
every numeric range, and the longest names. Computed from cookiecutter.json and the pre-generation hook's ranges."""

from __future__ import annotations

import itertools

from conftest import DEFAULTS, PROD_LIKE, VARIANTS, answers_of, load_hook

pre_gen = load_hook("pre_gen_project")


CHOICES = [key for key, value in DEFAULTS.items() if isinstance(value, list) and not key.startswith("_")]


def factors(answers: dict[str, str]) -> dict[str, str]:
    """Each choice option's value, and the stage kind and alarm e-mail as on/off factors."""
    chosen = {key: answers[key] for key in CHOICES}
    chosen["stage kind"] = "prod-like" if answers["stage"] in PROD_LIKE else "dev-like"
    chosen["alarm e-mail"] = "given" if answers["alarm_email"] else "none"
    return chosen


def test_every_pair_of_option_values_is_baked_and_tested():
    levels = {key: DEFAULTS[key] for key in CHOICES}
    levels |= {"stage kind": ["prod-like", "dev-like"], "alarm e-mail": ["given", "none"]}
    baked = [factors(answers_of(overrides)) for overrides in VARIANTS.values()]
    for name, answers in zip(VARIANTS, (answers_of(o) for o in VARIANTS.values()), strict=True):
        assert pre_gen.validate(answers) == [], name
    missing = [
        f"{a}={x} with {b}={y}"
        for (a, xs), (b, ys) in itertools.combinations(levels.items(), 2)
        for x in xs
        for y in ys
        if not any(row[a] == x and row[b] == y for row in baked)
    ]
    assert missing == []


def test_both_ends_of_every_numeric_range_are_baked():
    baked = [answers_of(overrides) for overrides in VARIANTS.values()]
    for key, (low, high) in pre_gen.INTEGER_RANGES.items():
        values = {int(answers[key]) for answers in baked}
        assert {low, high} <= values, f"{key}: {sorted(values)} misses {low} or {high}"


def test_the_longest_names_are_baked():
    baked = [answers_of(overrides) for overrides in VARIANTS.values()]
    assert any(len(a["project_name"]) == 32 and len(a["stage"]) == 12 for a in baked)


# The options under which the worker itself calls AWS: where the walls `make local` enforces (IAM, routes, keys) meet.
WORKER_CALLS = {"worker_vpc": "new", "result_topic": "sns", "idempotency": "dynamodb"}


def test_every_flavour_bakes_a_worker_in_a_vpc_with_every_option_that_makes_it_call_aws():
    """Pairwise missed this triple: a worker in a VPC with no route to the topic and table it calls."""
    baked = [answers_of(overrides) for overrides in VARIANTS.values()]
    for flavour in DEFAULTS["api_flavour"]:
        assert any(
            a["api_flavour"] == flavour and all(a[key] == value for key, value in WORKER_CALLS.items()) for a in baked
        ), flavour
