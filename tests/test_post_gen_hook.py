"""Pruning keeps exactly the chosen variant's files; the answers travel with the project."""

from __future__ import annotations

import json
import re

import pytest

from conftest import TEMPLATE, load_hook

post_gen = load_hook("post_gen_project")
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_name}}"


FLAVOURS = ("http", "rest", "websocket")


def variant_files(key: str, value: str) -> set[str]:
    return {path.format(pkg="async_api") for path in post_gen.OWNED_FILES[(key, value)]}


def project_files(project) -> set[str]:
    return {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}


def test_every_file_in_the_prune_table_exists_in_the_template():
    for paths in post_gen.OWNED_FILES.values():
        for path in paths:
            assert (PROJECT_TEMPLATE / path.format(pkg="{{cookiecutter.__package_name}}")).exists(), path


# What each flavour's project holds of the flavour-specific files, written out here rather than read from the
# hook's table, so that a wrong table entry fails (package: async_api).
FLAVOUR_FILES = {
    "http": {
        "async_api/http_api.py",
        "local/http_api.py",
        "tests/test_http_api.py",
        "tests/test_http_contract.py",
        "docs/http-api.md",
    },
    "rest": {
        "async_api/rest_api.py",
        "async_api/service_integration.py",
        "async_api/mapping/rest_request.vtl",
        "async_api/mapping/rest_response.vtl",
        "async_api/mapping/rest_error.vtl",
        "async_api/mapping/rest_refused.vtl",
        "local/rest_api.py",
        "local/vtl.py",
        "tests/test_rest_api.py",
        "tests/test_rest_contract.py",
        "tests/vtl.py",
        "docs/rest-api.md",
    },
    "websocket": {
        "async_api/websocket_api.py",
        "async_api/service_integration.py",
        "async_api/mapping/websocket_request.vtl",
        "local/websocket_api.py",
        "local/vtl.py",
        "worker/replies.py",
        "tests/test_websocket_api.py",
        "tests/test_websocket_contract.py",
        "tests/test_replies.py",
        "tests/vtl.py",
        "docs/websocket-api.md",
    },
}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_flavour_keeps_its_files_and_none_of_the_others(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    assert result.exit_code == 0, result.exception
    every_flavour_file = set().union(*FLAVOUR_FILES.values())
    assert project_files(result.project_path) & every_flavour_file == FLAVOUR_FILES[flavour]


def test_files_shared_by_rest_and_websocket_are_not_in_the_http_project(cookies):
    shared = variant_files("api_flavour", "rest") & variant_files("api_flavour", "websocket")
    assert "async_api/service_integration.py" in shared
    assert not shared & project_files(cookies.bake(extra_context={"api_flavour": "http"}).project_path)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_pruning_leaves_no_empty_folder(cookies, flavour):
    project = cookies.bake(extra_context={"api_flavour": flavour}).project_path
    assert [p for p in project.rglob("*") if p.is_dir() and not any(p.iterdir())] == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_kept_file_names_a_pruned_module(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    pruned_modules = {
        path.rsplit("/", 1)[-1].removesuffix(".py")
        for other in set(FLAVOURS) - {flavour}
        for path in variant_files("api_flavour", other) - variant_files("api_flavour", flavour)
        if path.endswith(".py")
    }
    for source in result.project_path.rglob("*.py"):
        imports = set(re.findall(r"^\s*(?:from|import)\s+\.?([\w.]+)", source.read_text(), re.MULTILINE))
        assert not {name.rsplit(".", 1)[-1] for name in imports} & pruned_modules, source


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_unrendered_template_syntax_is_left(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    for path in result.project_path.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            if ".github" in path.parts:  # GitHub Actions' own expressions, ${{ ... }}, copied without rendering
                text = re.sub(r"\$\{\{[^}]*\}\}", "", text)
            assert "{%" not in text and "{{" not in text, path


def test_the_answers_are_kept_in_the_project(cookies):
    result = cookies.bake(extra_context={"stage": "qa", "batch_size": "5"})
    kept = json.loads((result.project_path / ".cookiecutter.json").read_text())
    assert kept["stage"] == "qa" and kept["batch_size"] == "5"
    assert not [key for key in kept if key.startswith("_")]


def test_next_steps_are_printed(cookies, capfd):
    cookies.bake()
    out = capfd.readouterr().out
    for step in ("cd /", "/async-api\n", "make install", "make test", "make deploy"):
        assert step in out
