"""Echo: the runtime tests' app. GET / -> "echo <container>", /env/NAME -> $NAME,
/data -> a visit counter kept in /data, /ballast/N -> holds N MiB more it never touches again
(like a model's tables loaded at start). CRASH=1 makes it exit; SHOW_SECRET=NAME prints $NAME;
IGNORE_SIGTERM=1 makes it slow to stop (the engine's grace runs out, then SIGKILL)."""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = socket.gethostname()
print(f"echo app starting in {HOST}", flush=True)
if os.environ.get("SHOW_SECRET"):
    print(f"the secret is {os.environ.get(os.environ['SHOW_SECRET'], '')}", flush=True)
if os.environ.get("IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("CRASH"):
    print("boom: CRASH is set, exiting", flush=True)
    sys.exit(3)


BALLAST: list[bytes] = []


def ballast(mib: int) -> str:
    """Hex text: about as compressible as a Python heap (2-3x in zram)."""
    BALLAST.append(os.urandom(mib * 512 * 1024).hex().encode())
    return str(sum(len(b) for b in BALLAST) // 2**20)


def visits() -> str:
    path = Path("/data/visits")
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return str(count)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/env/"):
            body = os.environ.get(self.path[5:], "")
        elif self.path == "/data":
            body = visits()
        elif self.path.startswith("/ballast/"):
            body = ballast(int(self.path[9:]))
        else:
            body = f"echo {HOST}"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "7860"))), Handler).serve_forever()
