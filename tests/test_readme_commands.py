"""The README's two fresh-machine commands are the ones CI and users run, and the bake command works."""

from __future__ import annotations

import re
import subprocess

from conftest import TEMPLATE


def fresh_machine_commands() -> list[str]:
    readme = (TEMPLATE / "README.md").read_text()
    section = readme.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_the_readme_gives_exactly_a_bake_and_a_test_command():
    assert fresh_machine_commands() == ["make bake", "make test"]


def test_ci_runs_the_readmes_test_command():
    ci = (TEMPLATE / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)


def test_make_bake_writes_a_default_project_where_it_says(tmp_path):
    run = subprocess.run(
        ["make", "bake", f"BAKE_DIR={tmp_path}"], cwd=TEMPLATE, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "async-api" / "app.py").exists()
    assert (tmp_path / "async-api" / "async_api" / "http_api.py").exists()
