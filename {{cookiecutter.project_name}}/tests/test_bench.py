"""`make bench` (ops/bench.py) measures what it says: the hand-written loop B3 compares the handler to shows the
user what the handler shows, the code asset is the worker's code and nothing else, and the worker's cold start
loads neither the X-Ray SDK nor boto3."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT
from local.assembly import Assembly
from ops import bench

RECORDS, BATCH = 25, 10


@pytest.fixture(scope="module")
def assembly(synthesized) -> Assembly:
    return Assembly(synthesized.json, synthesized.template_path)


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def shown(line: dict) -> dict:
    """A log or metrics line without what differs from run to run (time, request id)."""
    varying = {"timestamp", "function_request_id", "location"}
    line = {key: value for key, value in line.items() if key not in varying}
    if "_aws" in line:
        line["_aws"] = {key: value for key, value in line["_aws"].items() if key != "Timestamp"}
    return line


def test_the_hand_loop_writes_what_the_handler_writes(assembly, expected):
    function = assembly.function()
    outputs = {
        kind: bench.run_throughput(kind, function, RECORDS, BATCH, expected.fifo)[1] for kind in ("handler", "loop")
    }
    handler, loop = lines(outputs["handler"]), lines(outputs["loop"])
    assert len(handler) == RECORDS + 3  # a line per record, and one EMF line per batch of 10
    assert [shown(line) for line in loop] == [shown(line) for line in handler]
    assert [set(line) for line in loop] == [set(line) for line in handler]  # same fields, location included


def test_the_code_asset_is_the_worker_folder_and_nothing_else(assembly):
    folder = bench.worker_asset(assembly)
    in_asset = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    in_worker = {p.name for p in (PROJECT / "worker").glob("*.py")} | {"schemas/message.json"}
    assert in_asset == in_worker
    assert 0 < bench.zipped_size(folder) < sum((folder / name).stat().st_size for name in in_asset)


def test_the_cold_start_loads_neither_the_xray_sdk_nor_boto3(assembly):
    function = assembly.function()
    module = function.handler.rsplit(".", 1)[0]
    loaded = subprocess.run(
        [sys.executable, "-c", f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"],
        cwd=bench.WORKER,
        env=bench.lambda_environment(function),
        capture_output=True,
        text=True,
        check=True,
    )
    modules = json.loads(loaded.stdout.splitlines()[-1])
    assert module in modules and "logic" in modules
    heavy = [name for name in modules if name.split(".")[0] in ("aws_xray_sdk", "boto3")]
    heavy += [name for name in ("botocore.session", "botocore.client") if name in modules]  # `botocore` alone: cheap
    assert not heavy


def test_the_bench_prints_a_table_and_writes_json(synthesized, tmp_path, capsys):
    output = tmp_path / "bench.json"
    assert bench.main(["--only", "B4", "--template", str(synthesized.template_path), "--json", str(output)]) == 0
    report = json.loads(output.read_text())
    figure = report["figures"]["B4"]
    assert figure["unit"] == "KB" and figure["value"] > 0 and figure["met"] == (figure["value"] <= 50)
    assert "worker code asset, zipped" in capsys.readouterr().out
