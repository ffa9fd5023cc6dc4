"""Every option combination bakes, and each baked project's own test suite passes (synth, cdk-nag, cfn-lint)."""

from __future__ import annotations

import pytest

from conftest import VARIANTS, run_in_project


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_variant_bakes_and_its_own_suite_passes(cookies, overrides):
    result = cookies.bake(extra_context=overrides)
    assert result.exit_code == 0, result.exception
    run = run_in_project(result.project_path, "pytest", "-q", "-p", "no:cacheprovider")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout and " skipped" not in run.stdout
    for lint in (("ruff", "check", "."), ("ruff", "format", "--check", ".")):
        run = run_in_project(result.project_path, *lint)
        assert run.returncode == 0, run.stdout[-4000:]
