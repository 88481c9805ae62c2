"""Certificates on disk and the table nginx serves them from (proxy/tls.py, nginx_data/).

Each certificate is one file `{data}/tls/certs/<name>.json`: the chain in PEM, its private key
encrypted at rest with the node's secret key (auth/crypto.py), mode 0600. nginx never reads
these files: the control plane decrypts them and pushes the whole table over nginx's private
admin socket, so a new or renewed certificate is served at the next handshake, no reload.

Table names are what a TLS client asks for (SNI): an exact host, `*.apps.example.org` for a
wildcard, and `default` for a client that names no host we know (an IP address).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spaceport.auth.crypto import decrypt, encrypt
from spaceport.settings import Settings

__all__ = [
    "CertBundle",
    "cert_table",
    "covers",
    "has_certificate",
    "load_all",
    "own_certificate",
    "placeholder",
    "save",
    "table_digest",
    "tls_dir",
    "write_private",
]


@dataclass(frozen=True)
class CertBundle:
    """A certificate chain and its key, with what renewal and routing need to know."""

    name: str
    chain_pem: str
    key_pem: str

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem.encode())

    @property
    def hosts(self) -> list[str]:
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return [str(h).lower() for h in san.value.get_values_for_type(x509.DNSName)]

    @property
    def serial(self) -> int:
        return self.leaf.serial_number

    def renew_at(self) -> dt.datetime:
        """Two thirds into its lifetime (Let's Encrypt's advice: 60 of 90 days)."""
        leaf = self.leaf
        start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        return start + (end - start) * 2 / 3


def tls_dir(settings: Settings) -> Path:
    return settings.data / "tls"


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by us only, replacing it whole (a reader never sees
    half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def save(settings: Settings, bundle: CertBundle) -> None:
    body = {
        "name": bundle.name,
        "chain_pem": bundle.chain_pem,
        "key": encrypt(settings, bundle.key_pem).decode(),
    }
    write_private(tls_dir(settings) / "certs" / f"{bundle.name}.json", json.dumps(body).encode())


def load_all(settings: Settings) -> dict[str, CertBundle]:
    """Every certificate ACME gave this node, by name; an unreadable file is skipped (the
    next order replaces it)."""
    out = {}
    for path in sorted((tls_dir(settings) / "certs").glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            bundle = CertBundle(
                name=raw["name"],
                chain_pem=raw["chain_pem"],
                key_pem=decrypt(settings, raw["key"].encode()),
            )
            bundle.leaf  # noqa: B018 - parse now: a broken file is skipped, not served
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out[bundle.name] = bundle
    return out


def own_certificate(settings: Settings) -> CertBundle | None:
    """The operator's certificate (tls_cert_file/tls_key_file), read at each call: replacing
    the files is enough for the next reconciler pass to serve the new one."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return CertBundle(
        name="own",
        chain_pem=settings.tls_cert_file.read_text(),
        key_pem=settings.tls_key_file.read_text(),
    )


def has_certificate(settings: Settings, host: str) -> bool:
    """Whether `host` is served a certificate of its own or the operator's (a file check, cheap
    enough for a status view: nothing is decrypted)."""
    if (tls_dir(settings) / "certs" / f"{host.lower()}.json").is_file():
        return True
    own = own_certificate(settings)
    return own is not None and covers(own, host)


def covers(bundle: CertBundle, host: str) -> bool:
    """Whether the certificate is valid for `host` (a wildcard covers one label)."""
    host = host.lower()
    for name in bundle.hosts:
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def cert_table(settings: Settings, console_host: str) -> dict[str, dict[str, str]]:
    """What nginx serves, by SNI name: ACME's certificates, then the operator's own over them
    for every name it covers; `default` is the console's."""
    table: dict[str, dict[str, str]] = {}
    own = own_certificate(settings)
    for bundle in load_all(settings).values():
        hosts = bundle.hosts
        if own is not None:  # nginx looks up the exact host before a wildcard: leave them out
            hosts = [h for h in hosts if not covers(own, h)]
        entry = {"cert": bundle.chain_pem, "key": bundle.key_pem}
        table.update(dict.fromkeys(hosts, entry))
        if console_host in hosts:
            table["default"] = entry
    if own is not None:
        entry = {"cert": own.chain_pem, "key": own.key_pem}
        table.update(dict.fromkeys(own.hosts, entry))
        if covers(own, console_host):
            table["default"] = entry
    return table


def table_digest(table: dict[str, dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()


def placeholder(settings: Settings) -> tuple[Path, Path]:
    """A self-signed certificate nginx's config names, for a handshake before the control
    plane pushed any table (nginx wants one in the config); made once per data dir."""
    cert, key = settings.run_dir / "tls-placeholder.pem", settings.run_dir / "tls-placeholder.key"
    if cert.is_file() and key.is_file():
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spaceport placeholder")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(private, hashes.SHA256())
    )
    write_private(
        key,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(cert, certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key
