"""Pruning keeps exactly the chosen variant's files; the answers travel with the project."""

from __future__ import annotations

import json
import re

import pytest

from conftest import TEMPLATE, load_hook

post_gen = load_hook("post_gen_project")
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_name}}"


def variant_files(key: str, value: str) -> set[str]:
    return {path.format(pkg="async_api") for path in post_gen.OWNED_FILES[(key, value)]}


def test_every_file_in_the_prune_table_exists_in_the_template():
    for paths in post_gen.OWNED_FILES.values():
        for path in paths:
            assert (PROJECT_TEMPLATE / path.format(pkg="{{cookiecutter.__package_name}}")).exists(), path


@pytest.mark.parametrize("flavour", ["http", "rest", "websocket"])
def test_a_flavour_keeps_its_files_and_none_of_the_others(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    assert result.exit_code == 0, result.exception
    present = {p.relative_to(result.project_path).as_posix() for p in result.project_path.rglob("*") if p.is_file()}
    assert variant_files("api_flavour", flavour) <= present
    for other in {"http", "rest", "websocket"} - {flavour}:
        assert not variant_files("api_flavour", other) & present


@pytest.mark.parametrize("flavour", ["http", "rest", "websocket"])
def test_no_kept_file_names_a_pruned_module(cookies, flavour):
    result = cookies.bake(extra_context={"api_flavour": flavour})
    pruned_modules = {
        path.rsplit("/", 1)[-1].removesuffix(".py")
        for (key, value), paths in post_gen.OWNED_FILES.items()
        if (key, value) != ("api_flavour", flavour) and key == "api_flavour"
        for path in paths
        if path.endswith(".py")
    }
    for source in result.project_path.rglob("*.py"):
        imports = set(re.findall(r"^\s*(?:from|import)\s+\.?([\w.]+)", source.read_text(), re.MULTILINE))
        assert not {name.rsplit(".", 1)[-1] for name in imports} & pruned_modules, source


def test_no_unrendered_template_syntax_is_left(cookies):
    result = cookies.bake()
    for path in result.project_path.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "{%" not in text and "{{" not in text, path


def test_the_answers_are_kept_in_the_project(cookies):
    result = cookies.bake(extra_context={"stage": "qa", "batch_size": "5"})
    kept = json.loads((result.project_path / ".cookiecutter.json").read_text())
    assert kept["stage"] == "qa" and kept["batch_size"] == "5"
    assert not [key for key in kept if key.startswith("_")]


def test_next_steps_are_printed(cookies, capfd):
    cookies.bake()
    out = capfd.readouterr().out
    for step in ("cd async-api", "make install", "make test", "make deploy"):
        assert step in out
