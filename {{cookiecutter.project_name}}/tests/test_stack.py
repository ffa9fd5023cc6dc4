"""The stack as a whole: its name, the cdk-nag checks and cfn-lint."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from cfnlint.api import lint_all

from conftest import PROD_LIKE_STAGE_NAMES


def test_stack_carries_the_design_name(synthesized, expected):
    assert synthesized.stack.stack_name == expected.stack_name
    assert synthesized.template_path.name == f"{expected.stack_name}.template.json"


def test_only_prod_like_stages_are_termination_protected(synthesized, expected):
    assert synthesized.stack.termination_protection is expected.prod_like
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    properties = manifest["artifacts"][expected.stack_name]["properties"]
    assert properties.get("terminationProtection", False) is expected.prod_like


def test_checks_ran_and_left_no_unacknowledged_finding(synthesized):
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    plugins = {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}
    assert set(plugins) == {"AwsSolutions", "Serverless"}
    for plugin in plugins.values():
        assert plugin["violations"] == []
        assert plugin["conclusion"] == "success"


def test_every_acknowledgement_is_narrow_and_explained(synthesized, expected):
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    acknowledged = [s for plugin in report["pluginReports"] for s in plugin["suppressedViolations"]]
    for finding in acknowledged:
        assert len(finding["reason"]) >= 60, finding["ruleName"]
        assert finding["acknowledgedAt"] != expected.stack_name, f"stack-wide acknowledgement: {finding['ruleName']}"


def test_cfn_lint_reports_no_error(synthesized):
    matches = lint_all(synthesized.template_path.read_text())
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


def test_the_stages_the_readme_calls_prod_like_keep_their_data_and_others_do_not(settings):
    for stage in PROD_LIKE_STAGE_NAMES | {"dev", "qa", "staging", "prod2"}:
        other = settings.for_stage(stage)
        kept = stage in PROD_LIKE_STAGE_NAMES
        assert other.prod_like is kept, stage
        assert other.removal_policy == (RemovalPolicy.RETAIN if kept else RemovalPolicy.DESTROY), stage
