"""The mutation check's list stays runnable: every mutant edits text the template has, and takes part somewhere.
(The mutants themselves run with `make mutants`, after `make test` in CI.)"""

from __future__ import annotations

import json

from conftest import VARIANTS
from mutants import COMBINATIONS, KILLS, MUTANTS, TEMPLATE


def test_every_mutant_edits_text_the_template_still_has():
    for mutant in MUTANTS:
        assert mutant.old in (TEMPLATE / mutant.path).read_text(), mutant.name


def test_each_flavour_x_queue_type_has_one_variant_and_every_mutant_applies_somewhere():
    answers = [VARIANTS[name] for name in COMBINATIONS]
    kinds = {(a.get("api_flavour", "http"), a.get("queue_type", "standard")) for a in answers}
    assert len(kinds) == len(COMBINATIONS) == 6
    for mutant in MUTANTS:
        assert any(mutant.applies(a) for a in answers), mutant.name


def test_the_recorded_killers_name_only_mutants_and_variants_that_run():
    known = {f"{m.name} / {v}" for m in MUTANTS for v in m.variants()}
    recorded = json.loads(KILLS.read_text())
    assert set(recorded) <= known
    assert all(test.startswith("tests/test_") and "::" in test for test in recorded.values())
