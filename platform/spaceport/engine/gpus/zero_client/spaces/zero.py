"""`@spaces.GPU`: each call borrows a GPU from the node's broker and runs in a forked child.

The app's main process never holds a GPU: a decorated call asks the broker (a Unix socket the
node mounts) for a lease, waits its turn (the place in the queue goes to Gradio's toasts and
to the log), then runs the function in a child process forked for this call, which sees only
the granted device (CUDA_VISIBLE_DEVICES). The child sends back the result (or each value of a
generator, or the exception); when the call outlives its duration the child is killed and the
call raises GPUError. The lease ends with the call: the GPU's device node disappears from the
container again and its memory goes with the child.

PyTorch: `.to("cuda")` / `.cuda()` on a module outside a call (Hugging Face's examples load a
model at import and move it at module level) is remembered and done in the child, under the
lease; `torch.cuda.is_available()` says True in the main process so apps take their GPU path.
"""

from __future__ import annotations

import functools
import inspect
import json
import multiprocessing
import os
import socket
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from .config import Config

SOCKET = os.environ.get("SPACEPORT_ZERO_GPU_SOCKET", "/run/spaceport-zero-gpu/broker.sock")
_IN_LEASE = False
_deferred: list[weakref.ref[Any]] = []
_originals: dict = {}


class GPUError(RuntimeError):
    """A GPU call could not run: refused (quota, no pool), past its duration, or crashed."""


def GPU(task: Callable[..., Any] | None = None, *, duration: Any = None, **_: Any) -> Any:
    """`@spaces.GPU`, `@spaces.GPU(duration=120)` or `spaces.GPU(fn, duration=120)`."""
    if task is None:
        return lambda fn: GPU(fn, duration=duration)
    if not Config.zero_gpu:
        return task
    if inspect.isgeneratorfunction(task):

        @functools.wraps(task)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from _call(task, args, kwargs, duration, generator=True)

        return gen_wrapper

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in _call(task, args, kwargs, duration, generator=False):
            return value
        return None

    return wrapper


def gradio_auto_wrap(task: Any) -> Any:
    """Gradio (5 and later) hands every event function to `spaces.gradio_auto_wrap` when it
    runs on Spaces. Calls take a GPU only through `@spaces.GPU` here, so it changes nothing."""
    return task


def disable_gradio_auto_wrap() -> None:
    """Hugging Face's switch for the above; nothing to switch off here."""


def _seconds(duration: Any, args: Any, kwargs: Any) -> float | None:
    if callable(duration):  # Hugging Face's dynamic duration: a function of the call's inputs
        duration = duration(*args, **kwargs)
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return float(duration) if duration else None


def _tell(message: str) -> None:
    print(f"[spaces] {message}", file=sys.stderr, flush=True)
    try:  # a visitor's Gradio page shows it as a toast (inside an event; a no-op elsewhere)
        import gradio as gr

        gr.Info(message)
    except Exception:
        pass


class _Lease:
    """One connection to the broker: acquire, wait, hold, release (closing it releases)."""

    def __init__(self, seconds: float | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(SOCKET)
        except OSError as exc:
            raise GPUError(f"the node's GPU broker does not answer at {SOCKET}: {exc}") from None
        self.lines = self.sock.makefile("rb")
        self._send(
            {
                "op": "acquire",
                "space": os.environ.get("SPACEPORT_ZERO_GPU_SPACE", ""),
                "deployment": os.environ.get("SPACEPORT_ZERO_GPU_DEPLOYMENT", ""),
                "token": os.environ.get("SPACEPORT_ZERO_GPU_TOKEN", ""),
                "duration": seconds,
            }
        )

    def _send(self, msg: dict) -> None:
        self.sock.sendall((json.dumps(msg) + "\n").encode())

    def wait(self) -> dict:
        """Block until granted; returns the grant ({gpu, device, duration})."""
        while True:
            line = self.lines.readline()
            if not line:
                raise GPUError("the GPU broker closed the connection (restarting?): try again")
            msg = json.loads(line)
            if "error" in msg:
                raise GPUError(msg["error"])
            if "queued" in msg:
                ahead = msg["queued"]
                _tell(
                    f"Waiting for a GPU: {ahead} call(s) ahead of this one"
                    if ahead
                    else "Waiting for a GPU: this call is next"
                )
            if "granted" in msg:
                return dict(msg["granted"])

    def release(self) -> None:
        """Give the GPU back and wait (briefly) until the broker has taken it and counted it,
        so this Space's next call sees its own usage."""
        try:
            self._send({"op": "release"})
            self.sock.settimeout(10)
            self.lines.readline()
        except OSError:
            pass
        finally:
            self.lines.close()
            self.sock.close()


def _call(
    task: Callable[..., Any], args: Any, kwargs: Any, duration: Any, generator: bool
) -> Iterator[Any]:
    lease = _Lease(_seconds(duration, args, kwargs))
    try:
        grant = lease.wait()
        seconds = float(grant["duration"])
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child, args=(send, task, args, kwargs, generator, grant, lease))
        child.start()
        send.close()
        deadline = time.monotonic() + seconds
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not receive.poll(left):  # a crash is readable: EOF
                    raise GPUError(
                        f"GPU task aborted: it ran past its duration of {seconds:.0f} s "
                        "(ask for more with @spaces.GPU(duration=...))"
                    )
                try:
                    kind, value = receive.recv()
                except EOFError:
                    child.join(5)
                    raise GPUError(
                        f"GPU task crashed (exit code {child.exitcode}): see the run logs"
                    ) from None
                if kind == "error":
                    raise value
                if kind == "done":
                    return
                yield value
        finally:
            if child.is_alive():
                child.kill()
            child.join(5)
            receive.close()
    finally:
        lease.release()


def _child(
    send: Any,
    task: Callable[..., Any],
    args: Any,
    kwargs: Any,
    generator: bool,
    grant: dict[str, Any],
    lease: _Lease,
) -> None:
    global _IN_LEASE
    _IN_LEASE = True
    lease.lines.close()  # this copy of the parent's connection: only the parent releases
    lease.sock.close()
    os.environ["CUDA_VISIBLE_DEVICES"] = str(grant["gpu"])
    os.environ["SPACEPORT_ZERO_GPU_DEVICE"] = str(grant["device"])
    try:
        _replay_torch()
        if generator:
            for item in task(*args, **kwargs):
                send.send(("item", item))
        else:
            send.send(("item", task(*args, **kwargs)))
        send.send(("done", None))
    except BaseException as exc:  # the app's own error, shown in the app as it would be
        try:
            send.send(("error", exc))
        except Exception:
            send.send(("error", GPUError("".join(traceback.format_exception_only(type(exc), exc)))))
    finally:
        send.close()


# --- PyTorch: CUDA work outside a call waits for one --------------------------------------
def _patch_torch() -> None:
    try:
        import torch
    except Exception:
        return
    module = torch.nn.Module
    _originals.update(to=module.to, cuda=module.cuda, available=torch.cuda.is_available)

    def wants_cuda(args: Any, kwargs: Any) -> bool:
        target = kwargs.get("device", args[0] if args else None)
        return str(target).startswith("cuda")

    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _IN_LEASE and wants_cuda(args, kwargs):
            _deferred.append(weakref.ref(self))
            return self
        return _originals["to"](self, *args, **kwargs)

    def cuda(self: Any, device: Any = None) -> Any:
        if not _IN_LEASE:
            _deferred.append(weakref.ref(self))
            return self
        return _originals["cuda"](self, device)

    module.to = to
    module.cuda = cuda
    torch.cuda.is_available = lambda: True if not _IN_LEASE else _originals["available"]()


def _replay_torch() -> None:
    if not _originals:
        return
    for ref in _deferred:
        obj = ref()
        if obj is not None:
            _originals["to"](obj, "cuda")


if Config.zero_gpu:
    _patch_torch()
