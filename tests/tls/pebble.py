"""The test CA and what trusts it: Debian's pebble, and Chromium told to accept its chain.

pebble's HTTP-01 validations dial our plain HTTP port (its `httpPort`) at names that
/etc/hosts maps to loopback (`tests.conftest.hosts_entries`); its roots and intermediates are
made anew at each start and read from its management port (`port + 1`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import chromium


def self_signed(names: list[str], cn: str) -> tuple[bytes, bytes]:
    """A certificate (PEM) for `names`, and its key, that nothing trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@contextmanager
def pebble(tmp: Path, port: int, http_port: int) -> Iterator[Path]:
    """pebble with its API on `port` and management on `port + 1`, validating HTTP-01 on
    `http_port`; yields the CA file its own HTTPS is verified against."""
    cert, key = self_signed(["localhost"], "pebble api")
    (tmp / "pebble-api.pem").write_bytes(cert)
    (tmp / "pebble-api.key").write_bytes(key)
    config = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{port + 1}",
        "certificate": str(tmp / "pebble-api.pem"),
        "privateKey": str(tmp / "pebble-api.key"),
        "httpPort": http_port,  # validations dial our plain HTTP port
        "tlsPort": port + 2,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    (tmp / "pebble.json").write_text(json.dumps({"pebble": config}))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    with (tmp / "pebble.log").open("w") as log:
        process = subprocess.Popen(
            ["pebble", "-config", str(tmp / "pebble.json")], env=env, stdout=log, stderr=log
        )
    try:
        wait_port(port)
        yield tmp / "pebble-api.pem"
    finally:
        process.terminate()
        process.wait(10)


def _management(api_ca: Path, port: int, what: str) -> str:
    verify = ssl.create_default_context(cafile=api_ca)
    return httpx.get(f"https://localhost:{port + 1}/{what}", verify=verify).text


def pebble_root(api_ca: Path, port: int, tmp: Path) -> Path:
    """pebble's root, from its management port: what clients verify our certificates with."""
    (tmp / "pebble-root.pem").write_text(_management(api_ca, port, "roots/0"))
    return tmp / "pebble-root.pem"


def chromium_trusting_pebble(pw: Any, api_ca: Path, port: int, *args: str) -> Any:
    """Debian's Chromium that accepts the chains pebble issues: its intermediate's key pinned
    with --ignore-certificate-errors-spki-list (a test profile has no trust store to add the
    root to), and *.test names resolved to this machine."""
    issuer = x509.load_pem_x509_certificate(_management(api_ca, port, "intermediates/0").encode())
    der = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return chromium(
        pw,
        "--host-resolver-rules=MAP *.test 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki}",
        *args,
    )
