"""Keep only the files of the options chosen, record the answers, and print the next steps.

A variant is a set of files. OWNED_FILES says which option value each variant file belongs to; the files of every
value not chosen are removed. Paths are relative to the generated project; `{pkg}` is the infrastructure package.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

OWNED_FILES: dict[tuple[str, str], tuple[str, ...]] = {
    ("api_flavour", "http"): (
        "{pkg}/http_api.py",
        "tests/test_http_api.py",
        "tests/test_http_contract.py",
        "docs/http-api.md",
    ),
    ("api_flavour", "rest"): (
        "{pkg}/rest_api.py",
        "{pkg}/mapping/rest_request.vtl",
        "{pkg}/mapping/rest_response.vtl",
        "{pkg}/mapping/rest_error.vtl",
        "tests/test_rest_api.py",
        "tests/test_rest_contract.py",
        "docs/rest-api.md",
    ),
    ("api_flavour", "websocket"): (
        "{pkg}/websocket_api.py",
        "{pkg}/mapping/websocket_request.vtl",
        "worker/replies.py",
        "tests/test_websocket_api.py",
        "tests/test_websocket_contract.py",
        "tests/test_replies.py",
        "docs/websocket-api.md",
    ),
}
ANSWERS_FILE = ".cookiecutter.json"


def files_to_remove(answers: dict) -> list[str]:
    """Relative paths of the files that belong to option values not chosen."""
    package = answers["__package_name"]
    return [
        path.format(pkg=package)
        for (key, value), paths in OWNED_FILES.items()
        if answers.get(key) != value
        for path in paths
    ]


def prune(root: Path, answers: dict) -> None:
    for relative in files_to_remove(answers):
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for folder in sorted({p.parent for p in root.rglob("*")}, key=lambda p: len(p.parts), reverse=True):
        if folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def record_answers(root: Path, answers: dict) -> None:
    """Keep the prompted answers with the project (`cookiecutter --replay-file` or a later update can reuse them)."""
    kept = {key: value for key, value in answers.items() if not key.startswith("_")}
    (root / ANSWERS_FILE).write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")


def next_steps(answers: dict) -> str:
    return "\n".join(
        [
            f"Generated {answers['project_name']} ({answers['api_flavour']} API, {answers['queue_type']} queue).",
            "Next steps:",
            f"  cd {answers['project_name']}",
            "  git init && git add -A && git commit -m 'Initial commit'",
            "  make install   # .venv with the CDK app, worker and test tools",
            "  make test      # offline: infrastructure assertions, worker and contract tests",
            "  make deploy    # needs AWS credentials and a bootstrapped account (npx aws-cdk@2 bootstrap)",
        ]
    )


def main(answers: dict, root: Path) -> int:
    prune(root, answers)
    record_answers(root, answers)
    print(next_steps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}"""), Path.cwd()))
