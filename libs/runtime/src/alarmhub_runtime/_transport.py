"""Transport security of the backing services — Kafka TLS and SASL/SCRAM, Redis TLS and ACL user, PostgreSQL
TLS — as settings every service shares, checked when they are read so that a wrong combination stops the
start with a message naming the variable.

The settings live here, beside the addresses they secure (``BaseServiceSettings`` inherits them), because
this package is the one every other depends on; the libraries that build the clients turn them into
client options: ``alarmhub_kafka.KafkaSecurity`` (aiokafka's ``security_protocol``, ``ssl_context``,
``sasl_*``), ``alarmhub_redis.redis_address`` (redis-py's ``ssl_*``, ``username``, ``password``), and the
PostgreSQL DSN itself (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey`` are added to ``DATABASE_URL``,
which asyncpg and libpq/psycopg both read, so every connection a service, ``alarmhub-migrate`` or
``alarmhub-admin`` opens carries them).

``ALARMHUB_REQUIRE_TLS=1`` is production mode: every backing connection must be encrypted *and* verify the
server (Kafka ``SSL``/``SASL_SSL`` with hostname check, ``rediss://``, PostgreSQL ``verify-full``). Without
it the dev stack's plain connections are allowed. Passwords come from files (``*_PASSWORD_FILE``), never
from an argument or a plain variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings

__all__ = ["KafkaTransport", "PostgresTransport", "RedisTransport", "read_secret_file"]

_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_PG_SSL_PARAMS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


def _readable(name: str, path: str | None) -> None:
    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name}={path}: no such file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{name}={path}: not readable by this process (uid {os.getuid()})")


def _pair(cert_name: str, cert: str | None, key_name: str, key: str | None) -> None:
    if (cert is None) != (key is None):
        raise ValueError(f"{cert_name} and {key_name} go together (a client certificate needs its key)")


def read_secret_file(name: str, path: str) -> str:
    """The secret in ``path`` (one line; the trailing newline dropped); ValueError naming ``name`` if empty."""
    text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    if not text:
        raise ValueError(f"{name}={path} is empty")
    return text


class _Production(BaseSettings):
    require_tls: bool = Field(
        default=False,
        alias="ALARMHUB_REQUIRE_TLS",
        description="production mode: Kafka, Redis and PostgreSQL only over verified TLS (refused at start "
        "otherwise)",
    )


class KafkaTransport(_Production):
    """Kafka: ``KAFKA_SECURITY_PROTOCOL`` and its TLS files and SASL/SCRAM account."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        alias="KAFKA_SECURITY_PROTOCOL",
        description="PLAINTEXT (dev broker), SSL, SASL_SSL (production: TLS and SCRAM), SASL_PLAINTEXT (not in "
        "production mode)",
    )
    kafka_tls_ca_file: str | None = Field(
        default=None, alias="KAFKA_TLS_CA_FILE", description="CA bundle that signed the brokers' certificates"
    )
    kafka_tls_cert_file: str | None = Field(
        default=None, alias="KAFKA_TLS_CERT_FILE", description="client certificate (mutual TLS), PEM"
    )
    kafka_tls_key_file: str | None = Field(
        default=None, alias="KAFKA_TLS_KEY_FILE", description="the client certificate's private key, PEM"
    )
    kafka_tls_check_hostname: bool = Field(
        default=True,
        alias="KAFKA_TLS_CHECK_HOSTNAME",
        description="check the broker's name against its certificate (required in production mode)",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(
        default="SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str | None = Field(default=None, min_length=1, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password_file: str | None = Field(
        default=None,
        alias="KAFKA_SASL_PASSWORD_FILE",
        description="file holding the SCRAM password (there is no variable for the password itself)",
    )

    @model_validator(mode="after")
    def _kafka_transport(self) -> KafkaTransport:
        proto = self.kafka_security_protocol
        tls, sasl = proto in _TLS_PROTOCOLS, proto in _SASL_PROTOCOLS
        files = {
            "KAFKA_TLS_CA_FILE": self.kafka_tls_ca_file,
            "KAFKA_TLS_CERT_FILE": self.kafka_tls_cert_file,
            "KAFKA_TLS_KEY_FILE": self.kafka_tls_key_file,
        }
        if not tls and any(files.values()):
            named = ", ".join(k for k, v in files.items() if v)
            raise ValueError(f"{named} set but KAFKA_SECURITY_PROTOCOL={proto} does not use TLS")
        account = {
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "KAFKA_SASL_PASSWORD_FILE": self.kafka_sasl_password_file,
        }
        if sasl and not all(account.values()):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={proto} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"
            )
        if not sasl and any(account.values()):
            raise ValueError(f"KAFKA_SASL_* set but KAFKA_SECURITY_PROTOCOL={proto} does not use SASL")
        if os.environ.get("KAFKA_SASL_PASSWORD"):
            raise ValueError(
                "KAFKA_SASL_PASSWORD is not read: put the password in a file named by KAFKA_SASL_PASSWORD_FILE"
            )
        if self.require_tls and not tls:
            raise ValueError(
                f"ALARMHUB_REQUIRE_TLS: KAFKA_SECURITY_PROTOCOL={proto} is not encrypted (use SASL_SSL or SSL)"
            )
        if self.require_tls and not self.kafka_tls_check_hostname:
            raise ValueError(
                "ALARMHUB_REQUIRE_TLS: KAFKA_TLS_CHECK_HOSTNAME=0 is refused (a broker's name must match its certificate)"
            )
        _pair("KAFKA_TLS_CERT_FILE", self.kafka_tls_cert_file, "KAFKA_TLS_KEY_FILE", self.kafka_tls_key_file)
        for name, path in {**files, "KAFKA_SASL_PASSWORD_FILE": self.kafka_sasl_password_file}.items():
            _readable(name, path)
        if self.kafka_sasl_password_file:
            read_secret_file("KAFKA_SASL_PASSWORD_FILE", self.kafka_sasl_password_file)
        return self

    def kafka_sasl_password(self) -> str | None:
        """The SCRAM password, read from ``KAFKA_SASL_PASSWORD_FILE`` now (a rotated file is read at the next start)."""
        if not self.kafka_sasl_password_file:
            return None
        return read_secret_file("KAFKA_SASL_PASSWORD_FILE", self.kafka_sasl_password_file)


class RedisTransport(_Production):
    """Redis: TLS (``rediss://``) with its CA and client certificate, and the ACL user and its password file."""

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        alias="REDIS_URL",
        description="redis:// or rediss:// (TLS); with REDIS_SENTINELS only its database, user and "
        "password are used",
    )
    redis_tls_ca_file: str | None = Field(
        default=None,
        alias="REDIS_TLS_CA_FILE",
        description="CA bundle that signed Redis' (and the sentinels') certificate, with rediss:// URLs",
    )
    redis_tls_cert_file: str | None = Field(
        default=None,
        alias="REDIS_TLS_CERT_FILE",
        description="client certificate (Redis tls-auth-clients), PEM",
    )
    redis_tls_key_file: str | None = Field(default=None, alias="REDIS_TLS_KEY_FILE")
    redis_username: str | None = Field(
        default=None,
        min_length=1,
        alias="REDIS_USERNAME",
        description="Redis ACL user (AUTH <user> <password>)",
    )
    redis_password_file: str | None = Field(
        default=None,
        alias="REDIS_PASSWORD_FILE",
        description="file holding the Redis password (instead of a password in REDIS_URL)",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _redis_transport(self) -> RedisTransport:
        parts = urlsplit(self.redis_url)
        files = {
            "REDIS_TLS_CA_FILE": self.redis_tls_ca_file,
            "REDIS_TLS_CERT_FILE": self.redis_tls_cert_file,
            "REDIS_TLS_KEY_FILE": self.redis_tls_key_file,
        }
        if parts.scheme != "rediss" and any(files.values()):
            named = ", ".join(k for k, v in files.items() if v)
            raise ValueError(f"{named} set but REDIS_URL is not rediss:// (TLS)")
        if self.require_tls and parts.scheme == "redis":
            raise ValueError(
                "ALARMHUB_REQUIRE_TLS: REDIS_URL is redis:// (plain); use rediss:// with REDIS_TLS_CA_FILE"
            )
        if self.redis_password_file and parts.password:
            raise ValueError("REDIS_PASSWORD_FILE set and REDIS_URL holds a password too: keep one")
        if self.redis_username and parts.username:
            raise ValueError("REDIS_USERNAME set and REDIS_URL names a user too: keep one")
        if self.redis_username and not (self.redis_password_file or parts.password):
            raise ValueError("REDIS_USERNAME needs a password (REDIS_PASSWORD_FILE)")
        _pair("REDIS_TLS_CERT_FILE", self.redis_tls_cert_file, "REDIS_TLS_KEY_FILE", self.redis_tls_key_file)
        for name, path in {**files, "REDIS_PASSWORD_FILE": self.redis_password_file}.items():
            _readable(name, path)
        if self.redis_password_file:
            read_secret_file("REDIS_PASSWORD_FILE", self.redis_password_file)
        return self

    def redis_password(self) -> str | None:
        """The password from ``REDIS_PASSWORD_FILE`` (None: the URL's, if any)."""
        if not self.redis_password_file:
            return None
        return read_secret_file("REDIS_PASSWORD_FILE", self.redis_password_file)


class PostgresTransport(_Production):
    """PostgreSQL: ``DATABASE_SSLMODE`` and its files, folded into ``database_url`` (the DSN every client reads)."""

    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(
            default=None,
            alias="DATABASE_SSLMODE",
            description="libpq sslmode added to DATABASE_URL; production mode requires verify-full",
        )
    )
    database_sslrootcert: str | None = Field(
        default=None, alias="DATABASE_SSLROOTCERT", description="CA that signed the server's certificate"
    )
    database_sslcert: str | None = Field(
        default=None, alias="DATABASE_SSLCERT", description="client certificate"
    )
    database_sslkey: str | None = Field(
        default=None, alias="DATABASE_SSLKEY", description="the client certificate's key (mode 600)"
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/alarmhub",
        alias="DATABASE_URL",
        validate_default=True,
        description="the DSN; the DATABASE_SSL* settings are added to its query",
    )

    @field_validator("database_url")
    @classmethod
    def _with_tls(cls, value: str, info: ValidationInfo) -> str:
        """``DATABASE_URL`` with the ``DATABASE_SSL*`` settings added as its query parameters."""
        given = {
            "sslmode": info.data.get("database_sslmode"),
            "sslrootcert": info.data.get("database_sslrootcert"),
            "sslcert": info.data.get("database_sslcert"),
            "sslkey": info.data.get("database_sslkey"),
        }
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            return value
        parts = urlsplit(value)
        query = parse_qsl(parts.query, keep_blank_values=True)
        both = sorted({k for k, _ in query} & set(given))
        if both:
            raise ValueError(
                f"DATABASE_URL has {', '.join(both)} and DATABASE_{both[0].upper()} is set too: keep one"
            )
        return urlunsplit(parts._replace(query=urlencode([*query, *given.items()])))

    @model_validator(mode="after")
    def _postgres_transport(self) -> PostgresTransport:
        parts = urlsplit(self.database_url)
        params = dict(parse_qsl(parts.query))
        mode = params.get("sslmode")
        local = (parts.hostname or "").startswith("/") or (
            "host" in params and params["host"].startswith("/")
        )
        if self.require_tls and mode != "verify-full" and not local:
            raise ValueError(
                f"ALARMHUB_REQUIRE_TLS: PostgreSQL sslmode is {mode or 'unset (prefer)'}; set DATABASE_SSLMODE=verify-full "
                "and DATABASE_SSLROOTCERT"
            )
        if mode in ("verify-ca", "verify-full") and not params.get("sslrootcert"):
            raise ValueError(
                f"sslmode {mode} needs DATABASE_SSLROOTCERT (the CA that signed the server's certificate)"
            )
        if mode in ("disable", None) and any(params.get(k) for k in _PG_SSL_PARAMS[1:]):
            raise ValueError(
                "DATABASE_SSLROOTCERT/SSLCERT/SSLKEY set but TLS is not asked for: set DATABASE_SSLMODE"
            )
        _pair("DATABASE_SSLCERT", params.get("sslcert"), "DATABASE_SSLKEY", params.get("sslkey"))
        for key in _PG_SSL_PARAMS[1:]:
            if params.get(key) and params[key] != "system":
                _readable(f"DATABASE_{key.upper()}", params[key])
        return self
