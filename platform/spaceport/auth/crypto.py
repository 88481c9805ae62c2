"""Secrets at rest: Fernet with a key from `SPACEPORT_SECRET_KEY` or `{data}/secret.key`."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet

from spaceport.settings import Settings


def _key(settings: Settings) -> bytes:
    if settings.secret_key:
        # Any string works: derive a Fernet key from it.
        return base64.urlsafe_b64encode(hashlib.sha256(settings.secret_key.encode()).digest())
    path = settings.data / "secret.key"
    if not path.exists():
        settings.ensure_dirs()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        except FileExistsError:
            pass
    return path.read_bytes().strip()


def sign(settings: Settings, purpose: str, value: str) -> str:
    """An HMAC of `value` for one purpose (a credential the node can check without storing)."""
    import hmac

    return hmac.new(_key(settings), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def encrypt(settings: Settings, value: str) -> bytes:
    return Fernet(_key(settings)).encrypt(value.encode())


def decrypt(settings: Settings, token: bytes) -> str:
    return Fernet(_key(settings)).decrypt(token).decode()
