"""PostgreSQL access for dispatch (asyncpg): all of the service's SQL, none of its rules.

:class:`Store` owns the pool and the incident tables (``_incidents.py``); the API's other tables each have
a small store of their own reached through it: ``store.people``, ``store.oidc_logins``, ``store.webhooks``, ``store.registry``
(registries and JT/T 809 platforms) and ``store.reports``.
"""

from ._incidents import INCIDENT_COLUMNS, Store
from .oidc import OidcLoginStore
from .people import PeopleStore
from .registry import REGISTRY_CHANNEL, RegistryStore
from .reports import ReportStore
from .webhooks import WebhookStore

__all__ = [
    "INCIDENT_COLUMNS",
    "REGISTRY_CHANNEL",
    "OidcLoginStore",
    "PeopleStore",
    "RegistryStore",
    "ReportStore",
    "Store",
    "WebhookStore",
]
