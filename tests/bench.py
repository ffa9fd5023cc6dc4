"""make bench: how long the template's paths take, side by side with one bare CDK synth and an empty `cdk init` app.

Three parts, each figure the median of several runs, the things compared run interleaved (a, b, a, b, ...) so that
a shared, noisy machine slows them alike:

- synth: one bare CDK synth (a fresh interpreter of this venv, one empty stack), the unit of every ratio.
- b0: time to green for a new user (target B0). The template: bake the default project, then its own `make install`
  (a fresh venv, uv bootstrapped from PyPI), `make test`, `make synth`. Against an empty CDK app: `cdk init app
  --language python` (pinned CLI, files only), venv, pip install of its requirements, `cdk synth`, its pytest.
  Target: template / empty app <= 0.75, the median of the per-repetition ratios.
- variants: each option combination of tests/conftest.py baked and its own suite run as tests/test_bake.py runs it;
  the whole matrix one after another (the sum) and two at a time (wall, one per core).

Prints a table and writes the same figures as JSON (bench.json at the template root unless --json). Exits 1, with
the failing step's output tail, if a step fails; a missed target is reported, not an error (unless --strict).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conftest import TEMPLATE, VARIANTS

PARTS = ("synth", "b0", "variants")
B0_TARGET = 0.75  # time to green of the template / that of an empty `cdk init` app
CDK_CLI = TEMPLATE / ".cache" / "cdk-cli" / "node_modules" / ".bin" / "cdk"
STEP_TIMEOUT = 1800  # seconds; the slowest step (a cold `make install` with pip as fallback) takes minutes
BARE_SYNTH = """
import sys
import aws_cdk as cdk
app = cdk.App(outdir=sys.argv[1])
cdk.Stack(app, "Empty")
app.synth()
"""


class StepFailed(Exception):
    """A step of a path exited non-zero (or timed out): the bench stops, since its figures would be wrong."""


@dataclass
class Row:
    """One figure of the table: its samples (seconds, or a ratio), its ratio to a bare synth, its target."""

    figure: str
    samples: list[float] = field(default_factory=list)
    unit: str = "s"  # "s", or "x" for a ratio
    synth_ratio: float | None = None
    target: float | None = None  # an upper bound of the median

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.median <= self.target

    def as_json(self) -> dict:
        return {
            "figure": self.figure,
            "unit": self.unit,
            "median": round(self.median, 3),
            "samples": [round(s, 3) for s in self.samples],
            "ratio_to_bare_synth": None if self.synth_ratio is None else round(self.synth_ratio, 2),
            "target_at_most": self.target,
            "passed": self.passed,
        }


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment for a child, without our venv or make's flags (as tests/test_fresh_install.py runs a project),
    with jsii's Node banner and the CDK CLI's telemetry off."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    return env | (extra or {})


def timed(step: str, command: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> float:
    """Runs one step and returns its wall time in seconds; raises StepFailed with its output tail if it fails."""
    started = time.perf_counter()
    try:
        run = subprocess.run(
            command, cwd=cwd, env=child_env(extra_env), capture_output=True, text=True, timeout=STEP_TIMEOUT
        )
    except subprocess.TimeoutExpired as timeout:
        raise StepFailed(f"{step}: timed out after {STEP_TIMEOUT} s: {' '.join(command)}") from timeout
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise StepFailed(
            f"{step}: exit {run.returncode}: {' '.join(command)} (in {cwd})\n"
            f"--- stdout (tail)\n{run.stdout[-4000:]}\n--- stderr (tail)\n{run.stderr[-4000:]}"
        )
    return elapsed


def bake(output_dir: Path, answers: dict[str, str]) -> tuple[Path, float]:
    """Bakes the template with this venv's cookiecutter; returns the project and the time it took."""
    pairs = [f"{key}={value}" for key, value in answers.items()]
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output_dir), str(TEMPLATE), *pairs]
    seconds = timed("bake", command, cwd=output_dir)
    [project] = [path for path in output_dir.iterdir() if path.is_dir()]
    return project, seconds


def bare_synth() -> float:
    """One empty stack synthesized by a fresh interpreter of this venv: the unit of every ratio."""
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as workdir:
        outdir = Path(workdir) / "cdk.out"
        return timed("bare synth", [sys.executable, "-c", BARE_SYNTH, str(outdir)], cwd=Path(workdir))


def template_path() -> dict[str, float]:
    """B0 for the template: a new user's bake, `make install` (its own venv), `make test`, `make synth`."""
    with tempfile.TemporaryDirectory(prefix="bench-b0-template-") as workdir:
        project, seconds = bake(Path(workdir), {})
        steps = {"bake": seconds}
        for target in ("install", "test", "synth"):
            steps[f"make {target}"] = timed(f"make {target}", ["make", target], cwd=project)
        return steps


def cdk_init_path() -> dict[str, float]:
    """B0 for an empty CDK app, each step explicit: `--generate-only` keeps `cdk init` from running `git init` and
    creating the venv itself; the steps after it are the ones its README gives."""
    with tempfile.TemporaryDirectory(prefix="bench-b0-cdk-init-") as workdir:
        project = Path(workdir) / "empty-app"
        project.mkdir()
        venv_bin = project / ".venv" / "bin"
        on_venv_path = {"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}  # cdk.json runs `python3 app.py`
        pip_install = [str(venv_bin / "pip"), "install", "-r", "requirements.txt", "-r", "requirements-dev.txt"]
        steps = [
            ("cdk init", [str(CDK_CLI), "init", "app", "--language", "python", "--generate-only"], None),
            ("venv", ["python3", "-m", "venv", ".venv"], None),
            ("pip install", pip_install, None),
            ("cdk synth", [str(CDK_CLI), "synth", "--quiet"], on_venv_path),
            ("pytest", [str(venv_bin / "pytest"), "-q", "-p", "no:cacheprovider"], None),
        ]
        return {name: timed(f"cdk init app: {name}", command, project, env) for name, command, env in steps}


def variant(name: str) -> dict[str, float]:
    """A variant baked and its own whole suite run by this venv, as tests/test_bake.py does (without the linters)."""
    with tempfile.TemporaryDirectory(prefix="bench-variant-") as workdir:
        output_dir = Path(workdir) / "out"
        output_dir.mkdir()
        project, seconds = bake(output_dir, VARIANTS[name])
        suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        keep = {"SYNTH_OUTDIR": str(Path(workdir) / "cdk.out")}
        return {"bake": seconds, "suite": timed(f"{name}: its suite", suite, project, keep)}


def two_at_a_time(names: list[str]) -> float:
    """The wall time of the variants run by two workers, one per core (as pytest-xdist workers would run them)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(variant, names))
    return time.perf_counter() - started


def say(message: str) -> None:
    print(message, flush=True)


def measure_b0(repeat: int, synth: Row) -> list[Row]:
    """Rounds of bare synth, template path, empty app path, so that the three share the machine's load alike."""
    template: dict[str, Row] = {}
    empty: dict[str, Row] = {}
    ratio = Row("B0 time to green: template / empty cdk init app", unit="x", target=B0_TARGET)
    for round_ in range(1, repeat + 1):
        synth.samples.append(bare_synth())
        say(f"[{round_}/{repeat}] bare synth {synth.samples[-1]:.1f} s")
        for label, path, rows in (("template", template_path, template), ("empty cdk init app", cdk_init_path, empty)):
            steps = path()
            steps["total"] = sum(steps.values())
            for step, seconds in steps.items():
                rows.setdefault(step, Row(f"B0 {label}: {step}")).samples.append(seconds)
            say(f"[{round_}/{repeat}] B0 {label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        ratio.samples.append(template["total"].samples[-1] / empty["total"].samples[-1])
    return [*template.values(), *empty.values(), ratio]


def measure_variants(names: list[str], repeat: int, pairs: bool) -> list[Row]:
    """Each variant one after another (round-robin when repeated), then, per round, the same set two at a time."""
    rows = {name: Row(f"variant {name}") for name in names}
    matrix = Row(f"matrix of {len(names)}: sum, one at a time")
    paired = Row(f"matrix of {len(names)}: two at a time (wall)")
    for round_ in range(1, repeat + 1):
        for name in names:
            steps = variant(name)
            rows[name].samples.append(sum(steps.values()))
            say(f"[{round_}/{repeat}] {name}: bake {steps['bake']:.1f} s, suite {steps['suite']:.1f} s")
        matrix.samples.append(sum(row.samples[-1] for row in rows.values()))
        if pairs:
            paired.samples.append(two_at_a_time(names))
            say(f"[{round_}/{repeat}] matrix two at a time: {paired.samples[-1]:.1f} s")
    return [*rows.values(), matrix, *([paired] if pairs else [])]


def table(rows: list[Row]) -> str:
    """Figure, median (seconds or a ratio), runs, ratio to one bare synth, target and verdict, one row each."""
    lines = [f"{'figure':58} {'median':>9} {'runs':>4} {'x synth':>8} {'target':>8}  result"]
    for row in rows:
        median = f"{row.median:.1f} s" if row.unit == "s" else f"{row.median:.2f} x"
        synth_ratio = "" if row.synth_ratio is None else f"{row.synth_ratio:.1f}"
        target = "" if row.target is None else f"<= {row.target:.2f}"
        verdict = {None: "", True: "pass", False: "FAIL"}[row.passed]
        lines.append(
            f"{row.figure:58} {median:>9} {len(row.samples):>4} {synth_ratio:>8} {target:>8}  {verdict}".rstrip()
        )
    return "\n".join(lines)


def cdk_cli_version() -> str:
    package = CDK_CLI.parent.parent / "aws-cdk" / "package.json"
    return json.loads(package.read_text())["version"]


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="the parts to run (all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the bare synth and of B0 (3)")
    parser.add_argument("--variant-repeat", type=int, default=1, help="runs of each variant (1)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME")
    parser.add_argument("--no-pairs", action="store_true", help="skip the matrix run two at a time")
    parser.add_argument("--json", type=Path, default=TEMPLATE / "bench.json", help="where the JSON goes")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.variant_repeat < 1:
        parser.error("--repeat and --variant-repeat must be at least 1")
    return args


def main(argv: list[str]) -> int:
    """`python tests/bench.py [--only synth b0 variants] [--repeat N] [--variants NAME...] [--json PATH]`."""
    args = arguments(argv)
    if "b0" in args.only and not CDK_CLI.exists():
        print(f"No CDK CLI at {CDK_CLI}: run `make install` at the template root first.", file=sys.stderr)
        return 1
    started_at, started = datetime.now(UTC), time.perf_counter()
    load_before = os.getloadavg()
    synth = Row("bare synth: one empty stack, fresh interpreter")
    rows: list[Row] = []
    parts: dict[str, Callable[[], list[Row]]] = {
        "b0": lambda: measure_b0(args.repeat, synth),
        "variants": lambda: measure_variants(args.variants, args.variant_repeat, not args.no_pairs),
    }
    try:
        for part in ("b0", "variants"):
            if part in args.only:
                rows += parts[part]()
        while len(synth.samples) < args.repeat:  # without b0, the synth runs on its own
            synth.samples.append(bare_synth())
            say(f"[{len(synth.samples)}/{args.repeat}] bare synth {synth.samples[-1]:.1f} s")
    except StepFailed as failure:
        print(f"\nbench: a step failed, no figures written.\n{failure}", file=sys.stderr)
        return 1
    rows.insert(0, synth)
    for row in rows:
        if row.unit == "s":
            row.synth_ratio = row.median / synth.median
    elapsed = time.perf_counter() - started
    say(
        f"\n{table(rows)}\n\nbench took {elapsed / 60:.1f} min; load average {load_before[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    report = {
        "command": [Path(sys.argv[0]).name, *argv],
        "started_at": started_at.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_start": [round(load, 2) for load in load_before],
            "load_average_end": [round(load, 2) for load in os.getloadavg()],
        },
        "python": sys.version.split()[0],
        "cdk_cli": cdk_cli_version() if CDK_CLI.exists() else None,
        "repeat": args.repeat,
        "variant_repeat": args.variant_repeat,
        "rows": [row.as_json() for row in rows],
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    say(f"JSON: {args.json}")
    missed = [row.figure for row in rows if row.passed is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
