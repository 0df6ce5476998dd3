"""Sign-in through the city's directory with OpenID Connect (authorization code flow with PKCE).

- ``start``: a fresh ``state``, ``nonce`` and PKCE ``code_verifier`` (S256 challenge, RFC 7636), kept for
  10 minutes in :class:`LoginStates` — PostgreSQL in the service (``store/oidc.py``), so that whichever
  replica the callback reaches finds it; the browser goes to the provider's authorization endpoint (from
  its discovery document, whose ``issuer`` must be the configured one).
- ``finish``: the state is taken once (the row deleted as it is read: a second callback, on any replica,
  is refused), an expired one is refused; the code is exchanged at the token endpoint with the verifier; the
  ``id_token``'s RS256 signature is checked against the provider's JWKS (by ``kid``; an unknown ``kid``
  fetches the JWKS again once, for key rotation; any other ``alg`` is refused), then ``iss``, ``aud``
  (and ``azp`` when several audiences), ``exp``/``iat`` (60 s leeway) and ``nonce``.
- The groups claim (``ALARMHUB_OIDC_GROUPS_CLAIM``) maps to a role and unit through the configured table
  (``ALARMHUB_OIDC_GROUPS``, JSON ``{"group": "role:unit"}``, first match in the table's order); a person
  in none of its groups is refused. The directory is trusted for the second factor of these sign-ins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["LoginStates", "OidcClient", "OidcConfig", "OidcError", "parse_groups", "verify_id_token"]

ROLES = ("dispatcher", "supervisor", "department")
STATE_TTL_S = 600
LEEWAY_S = 60


class OidcError(Exception):
    """A sign-in refused; the text says why (for the log and the 401)."""


class LoginStates(Protocol):
    """Where sign-ins wait for their callback, shared by every replica (``store.oidc_logins``)."""

    async def put(self, state: str, nonce: str, verifier: str, ttl_s: float) -> None: ...

    async def take(self, state: str) -> tuple[str, str] | None:
        """(nonce, verifier) once; None when unknown, taken or expired."""
        ...


def parse_groups(text: str) -> list[tuple[str, str, str]]:
    """``{"group": "role:unit", …}`` → [(group, role, unit)] in order; ValueError naming the bad entry."""
    if not text.strip():
        return []
    table = json.loads(text)
    if not isinstance(table, dict):
        raise ValueError("ALARMHUB_OIDC_GROUPS is a JSON object {group: 'role:unit'}")
    out = []
    for group, target in table.items():
        role, _, unit = str(target).partition(":")
        if role not in ROLES or not unit:
            raise ValueError(
                f"ALARMHUB_OIDC_GROUPS[{group!r}]: 'role:unit' with role one of {', '.join(ROLES)}"
            )
        out.append((str(group), role, unit))
    return out


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    groups: list[tuple[str, str, str]]
    groups_claim: str = "groups"


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def verify_id_token(
    token: str, jwks: dict[str, Any], *, issuer: str, client_id: str, nonce: str, now: float
) -> dict[str, Any]:
    """The claims of a valid RS256 id_token; OidcError otherwise (KeyError for an unknown ``kid``)."""
    try:
        h64, p64, s64 = token.split(".")
        header, claims, sig = json.loads(_b64d(h64)), json.loads(_b64d(p64)), _b64d(s64)
    except ValueError as exc:
        raise OidcError("malformed id_token") from exc
    if header.get("alg") != "RS256":
        raise OidcError(f"id_token algorithm {header.get('alg')!r} refused (RS256 only)")
    keys = {k.get("kid"): k for k in jwks.get("keys", []) if k.get("kty") == "RSA"}
    jwk = keys[header.get("kid")]  # KeyError: the caller refetches the JWKS once
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64d(jwk["e"]), "big"), int.from_bytes(_b64d(jwk["n"]), "big")
    )
    try:
        public.public_key().verify(sig, f"{h64}.{p64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise OidcError("id_token signature does not verify") from exc
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != issuer:
        raise OidcError("id_token issuer is not the configured one")
    if client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != client_id):
        raise OidcError("id_token audience is not this client")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - LEEWAY_S:
        raise OidcError("id_token expired")
    if isinstance(claims.get("iat"), int | float) and claims["iat"] > now + LEEWAY_S:
        raise OidcError("id_token issued in the future")
    if not secrets.compare_digest(
        str(claims.get("nonce", "")).encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
    ):
        raise OidcError("id_token nonce does not match this sign-in")
    return dict(claims)


class OidcClient:
    def __init__(self, cfg: OidcConfig, states: LoginStates, http: httpx.AsyncClient | None = None) -> None:
        self.cfg = cfg
        self.states = states
        self._http = http or httpx.AsyncClient(timeout=10)
        self._meta: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None

    async def _discovery(self) -> dict[str, Any]:
        if self._meta is None:
            r = await self._http.get(self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
            r.raise_for_status()
            meta = r.json()
            if meta.get("issuer") != self.cfg.issuer:
                raise OidcError("the provider's discovery document names another issuer")
            self._meta = meta
        return self._meta

    async def _keys(self, refresh: bool = False) -> dict[str, Any]:
        if self._jwks is None or refresh:
            r = await self._http.get((await self._discovery())["jwks_uri"])
            r.raise_for_status()
            self._jwks = r.json()
        return self._jwks

    async def start(self) -> str:
        """The provider's authorization URL for a new sign-in."""
        meta = await self._discovery()  # before keeping anything: an unreachable provider keeps nothing
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        await self.states.put(state, nonce, verifier, STATE_TTL_S)
        challenge = _b64e(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.cfg.client_id,
            "redirect_uri": self.cfg.redirect_uri,
            "scope": "openid profile " + self.cfg.groups_claim,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{meta['authorization_endpoint']}?{urlencode(query)}"

    async def finish(self, code: str, state: str, now: float | None = None) -> dict[str, Any]:
        """The verified id_token claims of the sign-in ``state`` started."""
        now = time.time() if now is None else now
        pending = await self.states.take(state)
        if pending is None:
            raise OidcError("unknown, used or expired sign-in state")
        nonce, verifier = pending
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.cfg.redirect_uri,
            "client_id": self.cfg.client_id,
            "code_verifier": verifier,
        }
        if self.cfg.client_secret:
            form["client_secret"] = self.cfg.client_secret
        r = await self._http.post((await self._discovery())["token_endpoint"], data=form)
        if r.status_code != 200:
            raise OidcError(f"the provider refused the code (HTTP {r.status_code})")
        token = str(r.json().get("id_token", ""))
        cfg = self.cfg
        try:
            return verify_id_token(
                token, await self._keys(), issuer=cfg.issuer, client_id=cfg.client_id, nonce=nonce, now=now
            )
        except KeyError:
            try:
                keys = await self._keys(refresh=True)
                return verify_id_token(
                    token, keys, issuer=cfg.issuer, client_id=cfg.client_id, nonce=nonce, now=now
                )
            except KeyError as exc:
                raise OidcError("id_token signed with a key the provider does not publish") from exc

    def role_unit(self, claims: dict[str, Any]) -> tuple[str, str] | None:
        have = claims.get(self.cfg.groups_claim) or []
        have = {have} if isinstance(have, str) else {str(g) for g in have}
        for group, role, unit in self.cfg.groups:
            if group in have:
                return role, unit
        return None

    async def close(self) -> None:
        await self._http.aclose()
