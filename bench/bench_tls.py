"""What HTTPS costs through Spaceport's nginx, measured side by side in one run with wrk
(docs/benchmarks.md, "HTTPS").

Two Spaceport nginx instances, started exactly as a node starts them (its config, its Lua
route table): one with an http URL, one with an https URL whose certificate is served from the
shared-memory table (`ssl_certificate_by_lua`, as ACME's would be). Both route to the same tiny
upstream (a plain nginx answering "ok"). Four variants, interleaved `--rounds` times, medians:
- keep-alive requests over HTTP and over HTTPS (the per-request cost of TLS once connected);
- a new connection per request (`Connection: close`) over HTTP and over HTTPS (the cost of a
  TCP connection plus, for HTTPS, a full TLS handshake with the Lua certificate lookup).

    .venv/bin/python bench/bench_tls.py [--duration 5] [--connections 16] [--rounds 3]

Needs: nginx with Debian's Lua module, and wrk, on PATH (make system).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spaceport.proxy.base import Route
from spaceport.proxy.nginx import NginxProxy, find_nginx
from spaceport.proxy.tls import push_certificates
from spaceport.settings import Settings

UPSTREAM_CONF = """daemon on; worker_processes 1; pid {tmp}/up.pid; error_log {tmp}/up.log;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
  location / {{ return 200 "ok"; }} }} }}
"""


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.test")]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp / "own.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "own.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp / "own.pem", tmp / "own.key"


def wrk(url: str, duration: int, connections: int, close: bool) -> float:
    """Requests per second wrk measured (2 threads)."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk said:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=18900, help="first of 10 ports")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (make system)")
    port = args.port
    tmp = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    cert, key = self_signed(tmp)
    (tmp / "up.conf").write_text(UPSTREAM_CONF.format(tmp=tmp, port=port + 9))
    plain = Settings(
        data=tmp / "plain",
        url=f"http://bench.test:{port}",
        listen=f"127.0.0.1:{port}",
        api_port=port + 1,
    )
    tls = Settings(
        data=tmp / "tls",
        url=f"https://bench.test:{port + 2}",
        listen=f"127.0.0.1:{port + 2}",
        http_listen=f"127.0.0.1:{port + 3}",
        api_port=port + 1,
        secret_key="bench",
        tls_cert_file=cert,
        tls_key_file=key,
        acme_directory="",
    )
    route = Route(space_id="bench/tiny", hosts=("127.0.0.1",), upstream=f"127.0.0.1:{port + 9}")
    proxies = [NginxProxy(plain), NginxProxy(tls)]
    nginx = find_nginx(plain)
    subprocess.run([nginx, "-p", str(tmp), "-c", str(tmp / "up.conf")], check=True)
    try:
        for proxy in proxies:
            asyncio.run(proxy.start())
            asyncio.run(proxy.set_routes([route]))
        assert push_certificates(tls)
        variants = {
            "HTTP, keep-alive": (f"http://127.0.0.1:{port}/", False),
            "HTTPS, keep-alive": (f"https://127.0.0.1:{port + 2}/", False),
            "HTTP, a connection per request": (f"http://127.0.0.1:{port}/", True),
            "HTTPS, a handshake per request": (f"https://127.0.0.1:{port + 2}/", True),
        }
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (url, close) in variants.items():
                runs[name].append(wrk(url, args.duration, args.connections, close))
                time.sleep(0.5)
        med = {name: statistics.median(values) for name, values in runs.items()}
        print(f"{'variant':34} {'req/s (median)':>15}  runs")
        for name, value in med.items():
            print(f"{name:34} {value:15.0f}  {', '.join(f'{v:.0f}' for v in runs[name])}")
        keep = med["HTTPS, keep-alive"] / med["HTTP, keep-alive"]
        hand = med["HTTPS, a handshake per request"] / med["HTTP, a connection per request"]
        print(f"HTTPS/HTTP, keep-alive requests:       {keep:.2f}x")
        print(f"HTTPS/HTTP, a new connection each:     {hand:.2f}x")
        print(
            "HTTPS keep-alive / HTTPS handshake each: "
            f"{med['HTTPS, keep-alive'] / med['HTTPS, a handshake per request']:.1f}x"
        )
    finally:
        for proxy in proxies:
            asyncio.run(proxy.stop())
        subprocess.run([nginx, "-p", str(tmp), "-c", str(tmp / "up.conf"), "-s", "stop"])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
