"""Keep only the files of the options chosen, record the answers, and print the next steps.

A variant is a set of files. OWNED_FILES says which option values each variant file belongs to; a file is removed
when none of its values was chosen (a file two flavours share is listed under both). Paths are relative to the
generated project; `{pkg}` is the infrastructure package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

OWNED_FILES: dict[tuple[str, str], tuple[str, ...]] = {
    ("api_flavour", "http"): (
        "{pkg}/http_api.py",
        "local/http_api.py",
        "tests/test_http_api.py",
        "tests/test_http_contract.py",
        "docs/http-api.md",
    ),
    ("api_flavour", "rest"): (
        "{pkg}/rest_api.py",
        "{pkg}/service_integration.py",
        "{pkg}/mapping/rest_request.vtl",
        "{pkg}/mapping/rest_response.vtl",
        "{pkg}/mapping/rest_error.vtl",
        "{pkg}/mapping/rest_refused.vtl",
        "local/rest_api.py",
        "local/vtl.py",
        "tests/test_rest_api.py",
        "tests/test_rest_contract.py",
        "tests/vtl.py",
        "docs/rest-api.md",
    ),
    ("api_flavour", "websocket"): (
        "{pkg}/websocket_api.py",
        "{pkg}/service_integration.py",
        "{pkg}/mapping/websocket_request.vtl",
        "local/websocket_api.py",
        "local/vtl.py",
        "worker/replies.py",
        "tests/test_websocket_api.py",
        "tests/test_websocket_contract.py",
        "tests/vtl.py",
        "tests/test_replies.py",
        "docs/websocket-api.md",
    ),
}
ANSWERS_FILE = ".cookiecutter.json"


def files_to_remove(answers: dict) -> list[str]:
    """Relative paths of the variant files that belong to no option value chosen."""
    chosen = {path for (key, value), paths in OWNED_FILES.items() if answers.get(key) == value for path in paths}
    owned = {path for paths in OWNED_FILES.values() for path in paths}
    return sorted(path.format(pkg=answers["__package_name"]) for path in owned - chosen)


def prune(root: Path, answers: dict) -> None:
    for relative in files_to_remove(answers):
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    # Deepest first, so that a folder emptied by the pruning (and then its parent) goes too.
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def record_answers(root: Path, answers: dict) -> None:
    """Keep the prompted answers with the project (`cookiecutter --replay-file` or a later update can reuse them)."""
    kept = {key: value for key, value in answers.items() if not key.startswith("_")}
    (root / ANSWERS_FILE).write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")


def fill_capacity_section(root: Path) -> None:
    """The README's capacity figures for these answers, by the project's own `make capacity` code (it needs only
    the standard library and settings.py, like this hook), which also prints its warnings. -B: no bytecode left."""
    subprocess.run([sys.executable, "-B", "-m", "ops.capacity", "--readme"], cwd=root, check=True)


def next_steps(answers: dict, root: Path) -> str:
    return "\n".join(
        [
            f"Generated {answers['project_name']} ({answers['api_flavour']} API, {answers['queue_type']} queue).",
            "Next steps:",
            f"  cd {root}",
            "  git init && git add -A && git commit -m 'Initial commit'",
            "  make install   # .venv with the CDK app, worker and test tools",
            "  make test      # offline: infrastructure assertions, worker and contract tests",
            "  make deploy    # needs AWS credentials and a CDK-bootstrapped account (README, Quick start)",
        ]
    )


def main(answers: dict, root: Path) -> int:
    prune(root, answers)
    record_answers(root, answers)
    fill_capacity_section(root)
    print(next_steps(answers, root))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}"""), Path.cwd()))
