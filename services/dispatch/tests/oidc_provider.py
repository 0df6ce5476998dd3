"""A small, test-only OpenID Connect provider on loopback (authorization code + PKCE, RS256 id_tokens, JWKS).

Written for these tests from the specifications (OpenID Connect Core 1.0 §3.1, RFC 7636, RFC 7517); it
approves every authorization request at once for ``user`` and lets a test make it misbehave (``tamper``):
sign with a key it does not publish, name another audience, an expired token, another nonce, or HS256.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _int(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class TestProvider:
    __test__ = False  # not a pytest class

    def __init__(self, client_id: str, claims: dict[str, Any]) -> None:
        self.client_id = client_id
        self.claims = claims  # sub, preferred_username, groups …
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tamper: str | None = None
        self.codes: dict[str, dict[str, str]] = {}
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.issuer = ""

    def _id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": nonce}
        claims.update(self.claims)
        alg, key = "RS256", self.key
        if self.tamper == "audience":
            claims["aud"] = "another-client"
        elif self.tamper == "expired":
            claims["exp"] = now - 3600
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-one-we-were-given"
        elif self.tamper == "key":
            key = self.rogue  # same kid, a key the JWKS does not hold
        elif self.tamper == "hs256":
            alg = "HS256"
        head = _b64(json.dumps({"alg": alg, "kid": "k1", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        signing = f"{head}.{body}".encode()
        if alg == "HS256":  # signed with the public modulus as an HMAC key: the classic confusion attack
            sig = hmac.new(
                _int(self.key.public_key().public_numbers().n).encode(), signing, hashlib.sha256
            ).digest()
        else:
            sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{_b64(sig)}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            pub = self.key.public_key().public_numbers()
            return {
                "keys": [
                    {
                        "kty": "RSA",
                        "kid": "k1",
                        "alg": "RS256",
                        "use": "sig",
                        "n": _int(pub.n),
                        "e": _int(pub.e),
                    }
                ]
            }

        @app.get("/authorize")
        async def authorize(
            response_type: str,
            client_id: str,
            redirect_uri: str,
            state: str,
            nonce: str,
            code_challenge: str,
            code_challenge_method: str,
            scope: str = "",
        ) -> RedirectResponse:
            if response_type != "code" or client_id != self.client_id or code_challenge_method != "S256":
                raise HTTPException(400, "bad authorization request")
            if "openid" not in scope.split():
                raise HTTPException(400, "scope must include openid")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": nonce, "challenge": code_challenge, "redirect_uri": redirect_uri}
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302
            )

        @app.post("/token")
        async def token(request: Request) -> dict[str, Any]:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
            if (
                grant is None
                or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != self.client_id
            ):
                raise HTTPException(400, "invalid_grant")
            if form.get("redirect_uri") != grant["redirect_uri"]:
                raise HTTPException(400, "invalid_grant")
            if _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) != grant["challenge"]:
                raise HTTPException(400, "invalid_grant: PKCE verifier does not match")
            return {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "id_token": self._id_token(grant["nonce"]),
            }

        return app

    async def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # connections wait in the backlog until the server accepts them
        self.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app(), log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
