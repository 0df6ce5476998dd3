"""How every Kafka client of alarmhub secures its connection: TLS (CA, client certificate, host-name check) and
SASL/SCRAM, from the settings ``alarmhub_runtime.KafkaTransport`` validated.

The producer, the consumer pipeline, the tail, topic creation, the DLQ tool and ``alarmhub-admin`` pass
:meth:`KafkaSecurity.client_kwargs` to aiokafka, so one setting reaches every connection. The dev broker
(Tansu) speaks neither TLS nor SASL: these options are checked by their validation and by the client
objects they build (``libs/kafka/tests/test_security.py``), not against a broker.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.helpers import create_ssl_context

__all__ = ["KafkaSecurity"]


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """``protocol`` as Kafka names it; the TLS files; the SCRAM account (the password read from its file)."""

    protocol: str = "PLAINTEXT"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Any) -> KafkaSecurity:
        """From ``alarmhub_runtime.BaseServiceSettings`` (the SCRAM password file is read now)."""
        return cls(
            protocol=settings.kafka_security_protocol,
            ca_file=settings.kafka_tls_ca_file,
            cert_file=settings.kafka_tls_cert_file,
            key_file=settings.kafka_tls_key_file,
            check_hostname=settings.kafka_tls_check_hostname,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password(),
        )

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context verifying the brokers (CERT_REQUIRED, host names unless turned off), or None."""
        if not self.tls:
            return None
        ctx = create_ssl_context(cafile=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        ctx.check_hostname = self.check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


PLAINTEXT = KafkaSecurity()
