"""An interactive WebSocket client for `make local` whose handshake is signed as the local caller (api_auth = iam,
local/sigv4.py), as `python -m websockets` cannot sign: type one frame per line; frames the API sends back (replies,
error frames) are printed as they come. Ctrl-D or Ctrl-C ends it.

Usage: python -m local.client ws://127.0.0.1:3000/
"""

from __future__ import annotations

import sys
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from . import sigv4


def _print_frames(connection: ClientConnection) -> None:
    try:
        for frame in connection:
            print(f"< {frame}", flush=True)
    except ConnectionClosed:
        pass


def main(argv: list[str]) -> None:
    [url] = argv
    headers = sigv4.sign("GET", url.replace("ws://", "http://", 1), b"", {})
    with connect(url, additional_headers=headers) as connection:
        print(f"Connected to {url}, signed as the local caller.", flush=True)
        threading.Thread(target=_print_frames, args=(connection,), daemon=True).start()
        try:
            for line in sys.stdin:
                if line.strip():
                    connection.send(line.rstrip("\n"))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv[1:])
