"""The proxy under attack: request smuggling and slowloris.

The protocol app behind the proxy is a naive HTTP/1.1 server (it trusts Content-Length unless
Transfer-Encoding is exactly `chunked`): the kind of backend a desync poisons. Each attack is
sent raw on its own connection; then visitors on fresh connections must get their own answers.
A poisoned backend connection would hand a visitor the smuggled request's answer (418).
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PUBLIC_PORT, Node
from tests.proxy.conftest import Fleet, via_proxy

pytestmark = pytest.mark.slow

# A request prefix that, left on a backend connection, swallows the next visitor's request
# line into a header and answers it with 418.
POISON = "GET /status/418 HTTP/1.1\r\nHost: x\r\nX-Swallow: "


def _chunked_poison() -> str:
    return f"0\r\n\r\n{POISON}"


def attacks(host: str) -> dict[str, bytes]:
    body_clte = _chunked_poison()
    smuggled = f"{POISON}"
    te_cl_chunk = f"{len(smuggled):x}\r\n{smuggled}\r\n0\r\n\r\n"
    head = f"POST /upload HTTP/1.1\r\nHost: {host}\r\n"
    cases = {
        "CL.TE": head
        + f"Content-Length: {len(body_clte)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        + body_clte,
        "TE.CL": head + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + te_cl_chunk,
        "TE obfuscated (xchunked)": head
        + f"Content-Length: {len(body_clte)}\r\nTransfer-Encoding: xchunked\r\n\r\n"
        + body_clte,
        "TE with a space before the colon": head
        + f"Content-Length: {len(body_clte)}\r\nTransfer-Encoding : chunked\r\n\r\n"
        + body_clte,
        "TE twice": head
        + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
        + f"Content-Length: {len(body_clte)}\r\n\r\n"
        + body_clte,
        "TE list (chunked, identity)": head
        + f"Transfer-Encoding: chunked, identity\r\nContent-Length: {len(body_clte)}\r\n\r\n"
        + body_clte,
        "two Content-Lengths": head
        + f"Content-Length: 0\r\nContent-Length: {len(POISON)}\r\n\r\n"
        + POISON,
        "bad chunk extension": head
        + "Transfer-Encoding: chunked\r\n\r\n"
        + f'0;ext="unterminated\r\n\r\n{POISON}',
        "chunk size with a bare LF": head + "Transfer-Encoding: chunked\r\n\r\n" + f"0\n\n{POISON}",
        "oversized chunk size": head
        + "Transfer-Encoding: chunked\r\n\r\n"
        + f"1{'0' * 20}\r\n{POISON}",
        "header folding": head
        + f"Content-Length: {len(POISON)}\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n"
        + POISON,
    }
    return {name: text.encode() for name, text in cases.items()}


def _raw(payload: bytes, wait: float = 1.5) -> bytes:
    """Send `payload` on a new connection to the proxy; everything it answered within `wait`."""
    with socket.create_connection(("127.0.0.1", PUBLIC_PORT), timeout=wait) as sock:
        sock.sendall(payload)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            got += data
        return got


@pytest.mark.parametrize("name", list(attacks("h")))
def test_request_smuggling_causes_no_desync(node: Node, fleet: Fleet, name: str) -> None:
    host = node.app_host(fleet.protocol)
    answer = _raw(attacks(host)[name])
    # the proxy refuses the ambiguous framing (400) or reads the body the way it forwards it;
    # either way the poison may at most be answered on the attacker's own connection.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:200]
    for _ in range(6):  # visitors, each on a fresh connection: the backend pool is reused
        r = via_proxy(node, fleet.protocol, path="/headers")
        assert r.status_code == 200, f"{name}: a visitor got {r.status_code}: {r.text[:200]}"
        assert r.json()["host"] == host


def _visitor_latencies(host: str, count: int) -> list[float]:
    """Seconds per request of `count` new visitors, one after another, each on a new
    connection (what slowloris would starve)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        r = httpx.get(f"http://127.0.0.1:{PUBLIC_PORT}/headers", headers={"Host": host}, timeout=10)
        assert r.status_code == 200
        times.append(time.perf_counter() - start)
        time.sleep(0.02)
    return times


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def test_slowloris_does_not_block_visitors(node: Node, fleet: Fleet, artifacts: Path) -> None:
    """1,000 slow connections (held by a process of their own, so they do not slow the
    measuring client): visitors still get answers, their p99 not doubled (plus a 50 ms floor
    for scheduling noise on a shared 2-core CI machine)."""
    host = node.app_host(fleet.protocol)
    before = _visitor_latencies(host, 150)
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.proxy.slowloris", str(PUBLIC_PORT), host, "1000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None
        connected = holder.stdout.readline().split()
        assert connected and int(connected[-1]) >= 990, connected  # all open and trickling
        during = _visitor_latencies(host, 150)
    finally:
        holder.communicate(timeout=60)  # closes its stdin: it lets go
    report = {"p99_before_s": _p99(before), "p99_during_s": _p99(during)}
    (artifacts / "proxy-slowloris.json").write_text(json.dumps(report, indent=2))
    print("slowloris:", report)
    assert _p99(during) <= 2 * _p99(before) + 0.05, report
