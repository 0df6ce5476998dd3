"""Redis plumbing: every service builds its Redis client here, from the shared settings
(``REDIS_URL``, ``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER``, ``REDIS_TLS_*``, ``REDIS_USERNAME``,
``REDIS_PASSWORD_FILE``)."""

from ._client import RedisAddress, connect_redis, redis_address

__all__ = ["RedisAddress", "connect_redis", "redis_address"]
