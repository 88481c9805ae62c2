"""A ZeroGPU app as written for Hugging Face (stdlib HTTP instead of Gradio, to start fast).

GET /env                 what `spaces` says about the machine
GET /device              the GPU device node outside any call (it must not be there)
GET /work?ms=N&d=S       a @spaces.GPU(duration=S) call that holds the GPU N ms
GET /slow?s=N            @spaces.GPU(duration=2) that runs N s (past its duration)
GET /crash               a GPU call whose process dies
GET /hold                a GPU call that leaves a process holding the device open
GET /alive?pid=N         whether a process still lives
GET /gen                 a generator GPU function (streams its values)
"""

import contextlib
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import spaces

try:  # the PyTorch pattern of Hugging Face's examples, guarded for a machine without torch
    import torch

    DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
except ImportError:
    torch = None
    DEVICE = "cpu"

GPU_NODE = None


def device_state() -> dict:
    path = os.environ.get("SPACEPORT_ZERO_GPU_DEVICE") or "/dev/nvidia2"
    out = {"path": path, "exists": os.path.exists(path)}
    try:
        with open(path, "rb"):
            out["opened"] = True
    except OSError as exc:
        out["opened"] = False
        out["open_error"] = exc.strerror
    try:
        os.mknod("/tmp/fake-gpu", 0o666 | 0o020000, os.makedev(1, 7))
        out["mknod"] = "allowed"
        os.unlink("/tmp/fake-gpu")
    except OSError as exc:
        out["mknod"] = exc.strerror
    return out


def work(ms: int) -> dict:
    start = time.time()
    seen = device_state()
    time.sleep(ms / 1000)
    return {
        "start": start,
        "end": time.time(),
        "device": seen,
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pid": os.getpid(),
    }


@spaces.GPU(duration=2)
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


@spaces.GPU
def crash() -> str:
    os._exit(9)


@spaces.GPU(duration=3)
def hold() -> int:
    """Fork a grandchild that keeps the GPU open after the call returns."""
    pid = os.fork()
    if pid == 0:
        handle = open(os.environ["SPACEPORT_ZERO_GPU_DEVICE"], "rb")  # noqa: SIM115
        while handle:
            time.sleep(1)
    return pid


@spaces.GPU(duration=3)
def gen(n: int):
    for i in range(n):
        yield {"i": i, "device": os.path.exists(os.environ["SPACEPORT_ZERO_GPU_DEVICE"])}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/env":
                body = {
                    "SPACES_ZERO_GPU": os.environ.get("SPACES_ZERO_GPU"),
                    "zero_gpu": spaces.Config.zero_gpu,
                    "device": DEVICE,
                    "spaces_file": spaces.__file__,
                }
            elif url.path == "/device":
                body = device_state()
            elif url.path == "/work":
                fn = spaces.GPU(work, duration=float(q.get("d", 3)))
                body = fn(int(q.get("ms", "0")))
            elif url.path == "/slow":
                body = {"result": slow(float(q.get("s", "5")))}
            elif url.path == "/crash":
                body = {"result": crash()}
            elif url.path == "/hold":
                body = {"pid": hold()}
            elif url.path == "/alive":
                pid = int(q["pid"])
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                body = {"alive": os.path.exists(f"/proc/{pid}") and _running(pid)}
            elif url.path == "/gen":
                body = {"items": list(gen(int(q.get("n", "3"))))}
            else:
                body = {"hello": "zero"}
            code = 200
        except Exception as exc:
            body, code = {"error": f"{type(exc).__name__}: {exc}"}, 500
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "7860"))), Handler).serve_forever()
