"""`make local`: the pipeline on 127.0.0.1 until Ctrl-C or SIGTERM. See the README's "Run it locally"."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .assembly import Assembly
from .emulator import Emulator, Options
from .sqs import PortInUse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--stage", help="the stage to emulate (default: the project's stage)")
    parser.add_argument("--template", type=Path, help="a synthesized stack template to run (default: cdk.out's)")
    args = parser.parse_args(argv)
    try:
        options = Options.from_environment(dict(os.environ), stage=args.stage)
    except ValueError as error:
        print(f"make local: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    assembly = Assembly(json.loads(args.template.read_text()), args.template) if args.template else None
    emulator = Emulator(
        options, assembly=assembly, log=lambda line: print(f"[local] {line}", file=sys.stderr, flush=True)
    )
    try:
        emulator.start()
    except PortInUse as error:
        print(f"make local: {error}", file=sys.stderr)
        return 2
    try:
        print("\n".join(emulator.banner()), flush=True)
        while not stopping.wait(0.5):
            pass
        print("[local] stopping ...", file=sys.stderr, flush=True)
    finally:
        emulator.stop()
    print("[local] stopped; ports freed", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
