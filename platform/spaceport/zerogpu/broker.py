"""The node's shared-GPU broker: grants `@spaces.GPU` calls a pool GPU, one lease at a time.

One asyncio process (`python -m spaceport.zerogpu.broker`, started by `spaceport up` when the
node has a pool) listening on a Unix socket that shared-GPU apps get mounted. A call is one
connection speaking JSON lines:

    app -> {"op": "acquire", "space": ..., "deployment": ..., "token": ..., "duration": 60}
    broker -> {"queued": 2}                 (calls ahead; again whenever it changes)
    broker -> {"granted": {"gpu": uuid, "device": "/dev/nvidia0", "duration": 60.0}}
    app -> {"op": "release"}                (or it closes the connection, or it crashes)
    broker -> {"released": 2.5}             (the device is gone and the seconds counted)
    broker -> {"expired": ...}              (the call ran past its duration: revoked)
    broker -> {"error": "..."}              (refused: bad token, over quota, no pool)

The token is an HMAC of the Space id and deployment that the node put in the app's
environment, so a Space cannot borrow a GPU under another's name. The device node exists in
the caller's container only between grant and release (engine/gpus/lease_gate.py); a call that
outlives its duration (plus a short grace) loses the GPU and its processes holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import structlog

from spaceport.auth.crypto import sign
from spaceport.engine.gpus.inventory import Gpu
from spaceport.engine.gpus.lease_gate import GateError, LeaseGate
from spaceport.engine.gpus.shared import SOCKET_NAME, pool
from spaceport.settings import Settings, get_settings
from spaceport.zerogpu import state
from spaceport.zerogpu.scheduler import Call, Scheduler

log = structlog.get_logger(__name__)
GRACE_S = 3.0
FIRST_LINE_S = 10.0  # a caller says what it wants at once, or is dropped
MAX_CONNECTIONS = 1024  # calls waiting or holding, all Spaces together
MAX_WAITING_PER_SPACE = 32  # one Space cannot flood the queue


class Broker:
    def __init__(
        self,
        settings: Settings,
        gate: LeaseGate | None = None,
        client: redis.Redis | None = None,
        gpus: list[Gpu] | None = None,
    ) -> None:
        self.settings = settings
        self.gpus = {g.uuid: g for g in (gpus if gpus is not None else pool(settings))}
        self.gate = gate or LeaseGate(settings)
        self.redis = client or redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        self.sched = Scheduler(list(self.gpus), settings.zero_gpu_calls_per_gpu)
        self.wakeups: dict[int, asyncio.Event] = {}
        self.positions: dict[int, int] = {}  # waiting call id -> calls ahead of it
        self.leases: dict[tuple[str, str], int] = {}  # (container, gpu) -> calls holding it
        self.connections = 0

    @property
    def socket_path(self) -> str:
        return str(self.settings.zero_gpu_dir / SOCKET_NAME)

    async def serve(self) -> None:
        self.settings.zero_gpu_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.settings.zero_gpu_dir, 0o755)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        server = await asyncio.start_unix_server(self.handle, path=self.socket_path)
        os.chmod(self.socket_path, 0o666)  # apps run as uid 1000; the token says who calls
        self._publish()
        log.info("zerogpu.broker_ready", socket=self.socket_path, gpus=list(self.gpus))
        async with server:
            await server.serve_forever()

    # --- one call -------------------------------------------------------------------------
    def _refusal(self, req: dict[str, Any]) -> str | None:
        space, dep, token = req.get("space"), req.get("deployment"), req.get("token")
        if req.get("op") != "acquire" or not isinstance(space, str) or not token:
            return "malformed request: expected op=acquire with space, deployment and token"
        want = sign(self.settings, "zero-gpu", f"{space}:{dep}")
        if not hmac.compare_digest(want, str(token)):
            return f"this app may not borrow GPUs as {space}: its token does not match"
        if not self.gpus:
            return "this node has no shared GPUs (SPACEPORT_ZERO_GPU_POOL is empty)"
        mine = [c for c in [*self.sched.waiting, *self.sched.holders()] if c.space == space]
        if sum(1 for c in mine if c.gpu is None) >= MAX_WAITING_PER_SPACE:
            return (
                f"{space} already has {MAX_WAITING_PER_SPACE} calls waiting for a GPU: "
                "try again when some have run"
            )
        quota = self.settings.zero_gpu_quota_s
        if quota:
            period = self.settings.zero_gpu_quota_period_s
            # what it used, plus what its calls in flight may still use (their durations)
            spent = state.used(self.redis, space, period) + sum(c.duration_s for c in mine)
            duration = self._duration(req)
            if spent + duration > quota:
                ends = time.strftime(
                    "%H:%M UTC", time.gmtime(state.period_ends(period, time.time()))
                )
                return (
                    f"GPU quota exceeded: {space} used {spent:.0f} s of its {quota:.0f} GPU "
                    f"seconds this period and this call asks for {duration:.0f} s; more at {ends}"
                )
        return None

    def _duration(self, req: dict[str, Any]) -> float:
        asked = req.get("duration")
        duration = float(asked) if isinstance(asked, int | float) and asked > 0 else 0.0
        duration = duration or self.settings.zero_gpu_default_duration_s
        return min(duration, self.settings.zero_gpu_max_duration_s)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        call: Call | None = None
        lease: tuple[str, str] | None = None  # (container, gpu) while the device is given

        async def send(msg: dict[str, Any]) -> None:
            writer.write((json.dumps(msg) + "\n").encode())
            await writer.drain()

        self.connections += 1
        try:
            if self.connections > MAX_CONNECTIONS:
                await send({"error": "the GPU broker is at its connection limit: try again"})
                return
            try:
                line = await asyncio.wait_for(reader.readline(), FIRST_LINE_S)
                req = json.loads(line or b"{}")
            except (TimeoutError, ValueError):
                await send({"error": "malformed request: one JSON line, at once"})
                return
            if not isinstance(req, dict):
                await send({"error": "malformed request: expected a JSON object"})
                return
            refusal = await asyncio.to_thread(self._refusal, req)
            if refusal is not None:
                log.info("zerogpu.refused", space=str(req.get("space"))[:200], why=refusal)
                await send({"error": refusal})
                return
            call = Call(req["space"], self._duration(req), arrived=time.monotonic())
            wake = self.wakeups[call.id] = asyncio.Event()
            self.sched.submit(call)
            left = asyncio.ensure_future(reader.readline())  # release, or EOF: the caller left
            self._dispatch()
            shown: int | None = None
            while call.gpu is None:
                ahead = self.positions.get(call.id, 0)
                if ahead != shown:
                    await send({"queued": ahead})
                    shown = ahead
                wake.clear()
                waiting = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait(
                    {waiting, left}, timeout=1.0, return_when="FIRST_COMPLETED"
                )
                waiting.cancel()
                if left in done:
                    return  # gone before its turn
            gpu = self.gpus[call.gpu]
            container = await asyncio.to_thread(
                self.gate.container, call.space, int(req.get("deployment") or 0)
            )
            lease = (container, gpu.uuid)
            self.leases[lease] = self.leases.get(lease, 0) + 1
            device = await asyncio.to_thread(self.gate.open, container, gpu)
            log.info("zerogpu.granted", space=call.space, gpu=gpu.uuid, duration=call.duration_s)
            await send(
                {"granted": {"gpu": gpu.uuid, "device": device, "duration": call.duration_s}}
            )
            try:
                await asyncio.wait_for(asyncio.shield(left), timeout=call.duration_s + GRACE_S)
            except TimeoutError:
                log.warning("zerogpu.expired", space=call.space, duration=call.duration_s)
                with contextlib.suppress(ConnectionError):
                    await send({"expired": f"the call ran past its {call.duration_s:.0f} s"})
        except (GateError, ValueError, ConnectionError) as exc:
            log.warning("zerogpu.call_failed", error=str(exc))
            with contextlib.suppress(Exception):
                await send({"error": str(exc)})
        finally:
            self.connections -= 1
            if call is not None:
                await self._end(call, lease, send)
            with contextlib.suppress(Exception):
                writer.close()

    async def _end(
        self, call: Call, lease: tuple[str, str] | None, send: Callable[..., Awaitable[None]]
    ) -> None:
        """Take the device back, free the slot, count the seconds, let the next call in: each
        step on its own, so one failing (the engine, Redis) never leaves the queue stuck."""
        if lease is not None:
            self.leases[lease] -= 1
            others_here = self.leases[lease] > 0  # the same app holds it in another call
            in_container = sum(n for (c, _), n in self.leases.items() if c == lease[0])
            if not self.leases[lease]:
                del self.leases[lease]
            try:
                if not others_here:
                    await asyncio.to_thread(
                        self.gate.close,
                        lease[0],
                        self.gpus[lease[1]],
                        keep_control=in_container > 0,
                    )
            except Exception as exc:  # the container may be gone: it holds nothing then
                log.warning("zerogpu.close_failed", error=repr(exc))
        held = self.sched.release(call, time.monotonic())
        self.wakeups.pop(call.id, None)
        if lease is not None:
            period = self.settings.zero_gpu_quota_period_s
            try:
                await asyncio.to_thread(state.record_call, self.redis, call.space, held, period)
            except redis.RedisError as exc:
                log.warning("zerogpu.usage_lost", space=call.space, seconds=held, error=str(exc))
            with contextlib.suppress(Exception):  # counted: the app's next call sees it
                await send({"released": round(held, 3)})
        self._dispatch()

    # --- the queue ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self.sched.grant(time.monotonic())
        self.positions = {c.id: i for i, c in enumerate(self.sched.order())}  # once per change
        for wake in self.wakeups.values():
            wake.set()  # granted ones go on; the others see their new place
        self._publish()

    def _publish(self) -> None:
        now, mono = time.time(), time.monotonic()
        leases = [
            {
                "space": c.space,
                "gpu": c.gpu,
                "heldS": round(mono - (c.granted_at or mono), 3),
                "durationS": c.duration_s,
            }
            for c in self.sched.holders()
        ]
        queue = [
            {"space": c.space, "position": i, "waitedS": round(mono - c.arrived, 3)}
            for i, c in enumerate(self.sched.order())
        ]
        try:
            state.publish(self.redis, leases, queue)
        except redis.RedisError as exc:  # the queue goes on; the console is behind
            log.warning("zerogpu.publish_failed", error=str(exc), at=now)


def main() -> None:
    asyncio.run(Broker(get_settings()).serve())


if __name__ == "__main__":
    main()
