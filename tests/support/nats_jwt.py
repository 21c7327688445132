"""Decentralized NATS auth for tests: an operator, an account and a user, as JWTs.

What ``nsc`` would make, written with ``nkeys`` (nats-io/jwt v2 claims, signed with
ed25519): the server trusts the operator, preloads the account (memory resolver), and a
part connects with the user's ``.creds`` file (``SWITCHBOARD_NATS_CREDS``).
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import nkeys

__all__ = ["operator_setup"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _keypair(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _jwt(issuer: nkeys.KeyPair, subject: nkeys.KeyPair, name: str, nats: dict[str, Any]) -> str:
    claims = {
        "jti": _b64(os.urandom(24)),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject.public_key.decode(),
        "nats": {**nats, "version": 2},
    }
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(issuer.sign(f"{header}.{body}".encode()))
    return f"{header}.{body}.{signature}"


def operator_setup(directory: Path) -> tuple[Path, Path]:
    """A server config trusting a new operator, and a user's ``.creds`` file for it."""
    operator = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    system = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)  # the server's own (JetStream needs one)
    user = _keypair(nkeys.PREFIX_BYTE_USER)
    unlimited = {"subs": -1, "data": -1, "payload": -1, "conn": -1, "wildcards": True}
    config = directory / "operator.conf"
    config.write_text(
        f"operator: {_jwt(operator, operator, 'test-operator', {'type': 'operator'})}\n"
        f"system_account: {system.public_key.decode()}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f"  {account.public_key.decode()}: "
        f"{_jwt(operator, account, 'test', {'type': 'account', 'limits': unlimited})}\n"
        f"  {system.public_key.decode()}: "
        f"{_jwt(operator, system, 'SYS', {'type': 'account', 'limits': unlimited})}\n"
        "}\n"
    )
    creds = directory / "user.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{_jwt(account, user, 'part', {'type': 'user', **unlimited})}\n"
        "------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed.decode()}\n"
        "------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    return config, creds
