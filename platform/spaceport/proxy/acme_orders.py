"""Certificates from an ACME CA (Let's Encrypt, or pebble in the tests) with certbot's `acme`.

The protocol is certbot's library; what is Spaceport's is small: the account key lives in the
data dir (encrypted at rest, auth/crypto.py), each order gets a fresh P-256 key, and HTTP-01
challenges are answered by nginx itself from tokens put in its shared memory over the admin
socket (`Challenges`), on the plain HTTP port the CA dials. Calls block (the library does):
the reconciler's thread runs them, never a request handler.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Protocol, cast

import josepy as jose
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from spaceport.auth.crypto import decrypt, encrypt
from spaceport.proxy.tls_store import CertBundle, tls_dir, write_private
from spaceport.settings import Settings

__all__ = ["AcmeError", "Challenges", "order_certificate"]

ORDER_TIMEOUT_S = 90


class AcmeError(Exception):
    """An order the CA refused or that did not finish; the message says which host and why."""


class Challenges(Protocol):
    """Where HTTP-01 answers are published while an order waits (nginx's shared memory)."""

    def put(self, token: str, key_authorization: str) -> None: ...

    def delete(self, token: str) -> None: ...


def _account_key(settings: Settings) -> jose.JWKRSA:
    """The node's ACME account key, made once (RSA 2048: every CA takes it)."""
    path = tls_dir(settings) / "account.json"
    if path.is_file():
        raw = json.loads(path.read_text())
        pem = decrypt(settings, raw["key"].encode()).encode()
        key = serialization.load_pem_private_key(pem, password=None)
        return jose.JWKRSA(key=cast(rsa.RSAPrivateKey, key))
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    write_private(path, json.dumps({"key": encrypt(settings, new_pem).decode()}).encode())
    return jose.JWKRSA(key=private)


def _client(settings: Settings) -> client.ClientV2:
    """A client signed in to the node's account (made at the first order)."""
    verify: Any = str(settings.acme_ca_bundle) if settings.acme_ca_bundle else True
    net = client.ClientNetwork(_account_key(settings), user_agent="spaceport", verify_ssl=verify)
    acme = client.ClientV2(client.ClientV2.get_directory(settings.acme_directory, net), net)
    contact = (f"mailto:{settings.acme_email}",) if settings.acme_email else ()
    registration = messages.NewRegistration(contact=contact, terms_of_service_agreed=True)
    try:
        net.account = acme.new_account(registration)
    except errors.ConflictError as exists:  # the key's account, made by an earlier order
        net.account = messages.RegistrationResource(
            uri=exists.location, body=messages.Registration()
        )
    return acme


def order_certificate(
    settings: Settings, name: str, hosts: Sequence[str], answers: Challenges
) -> CertBundle:
    """Order one certificate for `hosts` (HTTP-01 on each), returned with its new key."""
    private = ec.generate_private_key(ec.SECP256R1())
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    published: list[str] = []
    try:
        acme = _client(settings)
        order = acme.new_order(crypto_util.make_csr(key_pem, list(hosts)))
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # proven recently: CAs reuse an authorization (renewals)
            http01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
            if not http01:
                raise AcmeError(f"{authz.body.identifier.value}: the CA offers no HTTP-01")
            response, validation = http01[0].response_and_validation(acme.net.key)
            token = http01[0].chall.encode("token")
            answers.put(token, validation)
            published.append(token)
            acme.answer_challenge(http01[0], response)
        deadline = dt.datetime.now() + dt.timedelta(seconds=ORDER_TIMEOUT_S)
        done = acme.poll_and_finalize(order, deadline=deadline)
    except (errors.Error, messages.Error, OSError) as exc:
        raise AcmeError(f"certificate for {', '.join(hosts)}: {exc}") from exc
    finally:
        for token in published:
            answers.delete(token)
    return CertBundle(name=name, chain_pem=done.fullchain_pem, key_pem=key_pem.decode())
