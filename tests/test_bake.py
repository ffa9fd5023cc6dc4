"""Every option combination bakes, and each baked project's own test suite passes (synth, cdk-nag, cfn-lint)."""

from __future__ import annotations

import pytest

from conftest import VARIANTS, run_project_tests


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_variant_bakes_and_its_own_suite_passes(cookies, overrides):
    result = cookies.bake(extra_context=overrides)
    assert result.exit_code == 0, result.exception
    run = run_project_tests(result.project_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
