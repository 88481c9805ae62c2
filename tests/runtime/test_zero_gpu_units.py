"""The shared-GPU queue's rules, on the scheduler itself (no I/O to fake: it has none)."""

from __future__ import annotations

from spaceport.zerogpu.scheduler import Call, Scheduler


def test_one_call_per_gpu_in_arrival_order_within_a_space() -> None:
    s = Scheduler(["gpu0"])
    calls = [Call("a/x", 10, arrived=t) for t in (1.0, 2.0, 3.0)]
    for c in calls:
        s.submit(c)
    assert s.grant(now=4.0) == [calls[0]]
    assert [s.position(c) for c in calls[1:]] == [0, 1]
    assert s.grant(now=4.5) == []  # the GPU is held
    assert s.release(calls[0], now=6.0) == 2.0  # seconds held
    assert s.grant(now=6.0) == [calls[1]]


def test_a_busy_space_does_not_starve_a_quiet_one() -> None:
    s = Scheduler(["gpu0"])
    busy = [Call("a/busy", 10, arrived=float(t)) for t in range(5)]
    quiet = Call("b/quiet", 10, arrived=10.0)  # arrives after all of a's
    for c in [*busy, quiet]:
        s.submit(c)
    first = s.grant(now=11.0)[0]
    assert first is busy[0]
    assert s.position(quiet) == 0  # next, ahead of a's four others
    s.release(first, now=12.0)
    assert s.grant(now=12.0) == [quiet]


def test_several_calls_per_gpu_and_several_gpus() -> None:
    s = Scheduler(["gpu0", "gpu1"], calls_per_gpu=2)
    calls = [Call(f"s/{i}", 10, arrived=float(i)) for i in range(5)]
    for c in calls:
        s.submit(c)
    granted = s.grant(now=10.0)
    assert len(granted) == 4 and {c.gpu for c in granted} == {"gpu0", "gpu1"}
    assert [c.gpu for c in granted] == ["gpu0", "gpu1", "gpu0", "gpu1"]  # spread, not piled
    assert s.waiting == [calls[4]]


def test_leaving_the_queue_frees_nothing_and_counts_nothing() -> None:
    s = Scheduler(["gpu0"])
    a, b = Call("a/x", 10, arrived=1.0), Call("b/y", 10, arrived=2.0)
    s.submit(a)
    s.submit(b)
    s.grant(now=3.0)
    assert s.release(b, now=4.0) == 0.0  # b gave up waiting
    assert s.holders() == [a] and s.waiting == []


def test_the_shared_flavor_says_why_a_node_cannot_give_it(tmp_path: object) -> None:
    from spaceport.lifecycle.hardware import resolve_flavor, shared_gpu_refusal
    from spaceport.settings import Settings

    none = Settings(data=tmp_path, zero_gpu_pool=[])
    zero = resolve_flavor(none, "zero-a10g")
    assert "SPACEPORT_ZERO_GPU_POOL" in (shared_gpu_refusal(none, zero) or "")
    pooled = Settings(data=tmp_path, zero_gpu_pool=["GPU-x"])
    assert shared_gpu_refusal(pooled, zero) is None
    cluster = Settings(data=tmp_path, zero_gpu_pool=["GPU-x"], runtime="swarm")
    assert "cluster mode" in (shared_gpu_refusal(cluster, zero) or "")
    assert shared_gpu_refusal(none, resolve_flavor(none, "t4-small")) is None
