"""The authorization matrix: every route of dispatch × every role × own/other unit, and every route of the
other HTTP surfaces (ingest-camera's intake and command port, the GPS command port, each service's health port) × its
callers, with the answer expected. ``test_authz_matrix.py`` (dispatch) and ``test_authz_surfaces.py`` (the
others) check it against running services; a route served without an entry here fails them, and so does
an entry for a route that is gone.

Roles (columns), each a real token minted by the test:

- ``city_sup`` / ``city_disp``: supervisor / dispatcher of the city (the tree's root);
- ``dist_sup`` / ``dist_disp``: of district A; ``stn_sup`` / ``stn_disp``: of station A (in district A);
- ``dept``: a department token of district A (read-only); ``company``: alarm company X;
- ``owner``: a vehicle owner whose token names vehicle V; ``anon``: no token.

"own" is a record of station A / company X / vehicle V; "other" is the same kind of record in station B
of district B / company Y / another owner's vehicle. For the city both are its own.

A cell is ``own/other`` or one answer for both. An answer is an HTTP status, or for list routes ``+`` (200,
the record is listed) / ``-`` (200, it is not). Statuses other than 2xx/401/403/404 mean the call passed
authorization and was refused for what it asked (409: the incident has no vehicle, the camera no stream
URL; 503: live view is off) — the cheapest call that proves the caller got in without side effects.
"""

from __future__ import annotations

ROLES = (
    "city_sup",
    "city_disp",
    "dist_sup",
    "dist_disp",
    "stn_sup",
    "stn_disp",
    "dept",
    "company",
    "owner",
    "anon",
)

# fmt: off
_I = "401"  # anonymous, on every route that needs a token
# the answer for  city_sup  city_disp  dist_sup  dist_disp  stn_sup  stn_disp  dept  company  owner  anon
READ_INCIDENT = ("200", "200", "200/404", "200/404", "200/404", "200/404", "200/404", "200/404", "200/404", _I)
LIST_INCIDENTS = ("+", "+", "+/-", "+/-", "+/-", "+/-", "+/-", "+/-", "+/-", _I)
ACT_ON_INCIDENT = ("200", "200", "200/404", "200/404", "200/404", "200/404", "403/404", "403/404", "403/404", _I)
EVERY_TOKEN = ("200",) * 9 + (_I,)
UNITS_ONLY = ("200",) * 7 + ("403", "403", _I)
SUPERVISOR_WRITE = ("201", "403", "201/403", "403", "201/403", "403", "403", "403", "403", _I)
SUPERVISOR_EDIT = ("200", "403", "200/404", "403", "200/404", "403", "403", "403", "403", _I)
SUPERVISOR_DELETE = ("204", "403", "204/404", "403", "204/404", "403", "403", "403", "403", _I)
SUPERVISOR_LIST = ("+", "403", "+/-", "403", "+/-", "403", "403", "403", "403", _I)
CITY_SUPERVISOR = ("{}", "403", "403", "403", "403", "403", "403", "403", "403", _I)
SUPERVISORS = ("200", "403", "200", "403", "200", "403", "403", "403", "403", _I)
VEHICLE = ("200", "200", "200/404", "200/404", "200/404", "200/404", "403", "403", "200/403", _I)
PUBLIC = ("200",) * 10


def _city(status: str) -> tuple[str, ...]:
    return tuple(c.format(status) for c in CITY_SUPERVISOR)


#: (method, path) → one answer per role in ROLES order
MATRIX: dict[tuple[str, str], tuple[str, ...]] = {
    # -- incidents (the console's queue and incident view) ------------------------------------
    ("GET", "/api/v1/incidents"): LIST_INCIDENTS,
    ("GET", "/api/v1/incidents/{incident_id}"): READ_INCIDENT,
    ("GET", "/api/v1/incidents/{incident_id}/track"): READ_INCIDENT,
    ("GET", "/api/v1/incidents/{incident_id}/site"): READ_INCIDENT,
    ("GET", "/api/v1/incidents/{incident_id}/cap"): READ_INCIDENT,
    ("GET", "/api/v1/incidents/{incident_id}/cameras"):
        ("200", "200", "200/404", "200/404", "200/404", "200/404", "200/404", "403", "403", _I),
    # the record's incident is an alarm panel's: a caller who may act gets 409 (no vehicle to command)
    ("POST", "/api/v1/incidents/{incident_id}/vehicle-command"):
        ("409", "409", "409/404", "409/404", "409/404", "409/404", "403/404", "403/404", "403/404", _I),
    ("POST", "/api/v1/incidents/{incident_id}/ack"): ACT_ON_INCIDENT,
    ("POST", "/api/v1/incidents/{incident_id}/on-scene"): ACT_ON_INCIDENT,
    ("POST", "/api/v1/incidents/{incident_id}/escalate"): ACT_ON_INCIDENT,
    ("POST", "/api/v1/incidents/{incident_id}/verify"): ACT_ON_INCIDENT,
    ("POST", "/api/v1/incidents/{incident_id}/handoff"): ACT_ON_INCIDENT,
    ("POST", "/api/v1/incidents/{incident_id}/close"): ACT_ON_INCIDENT,
    ("GET", "/api/v1/cap"): EVERY_TOKEN,
    ("GET", "/api/v1/stream"): EVERY_TOKEN,
    ("GET", "/api/v1/me"): EVERY_TOKEN,
    # -- reports ---------------------------------------------------------------------------------
    ("GET", "/api/v1/reports/ack-times"): EVERY_TOKEN,  # each over the caller's own incidents
    ("GET", "/api/v1/reports/false-alarms"): EVERY_TOKEN,
    ("GET", "/api/v1/reports/cameras"): UNITS_ONLY,
    ("GET", "/api/v1/reports/devices"): UNITS_ONLY,
    # the unit tree below the caller's unit (alarm companies and vehicle owners: none)
    ("GET", "/api/v1/units"): ("+", "+", "+/-", "+/-", "+/-", "+/-", "+/-", "-", "-", _I),
    # -- webhooks: a supervisor's, for its unit and below (alarm companies' by the city) ------------
    ("GET", "/api/v1/webhooks"): SUPERVISOR_LIST,
    ("POST", "/api/v1/webhooks"): SUPERVISOR_WRITE,
    ("DELETE", "/api/v1/webhooks/{hook_id}"): SUPERVISOR_DELETE,
    ("GET", "/api/v1/webhooks/dead-letters"): SUPERVISOR_LIST,
    ("POST", "/api/v1/webhooks/dead-letters/{delivery_id}/retry"): SUPERVISOR_EDIT,
    # -- tokens ----------------------------------------------------------------------------------
    ("POST", "/api/v1/tokens"): SUPERVISOR_WRITE,
    # own: minted by station A's supervisor; other: by station B's (the minting unit's subtree lists/revokes)
    ("GET", "/api/v1/tokens"): SUPERVISOR_LIST,
    ("DELETE", "/api/v1/tokens/{token_id}"): SUPERVISOR_DELETE,
    # -- registries: records of the caller's subtree; alarm companies read their accounts --------
    ("GET", "/api/v1/registry/{kind}"): ("+", "+", "+/-", "+/-", "+/-", "+/-", "+/-", "+/-", "403", _I),
    ("POST", "/api/v1/registry/accounts"): SUPERVISOR_WRITE,
    ("POST", "/api/v1/registry/vehicles"): SUPERVISOR_WRITE,
    ("POST", "/api/v1/registry/cameras"): SUPERVISOR_WRITE,
    # every kind that exists has a route of its own before this one: what reaches it is unknown (404)
    ("POST", "/api/v1/registry/{kind}"): ("404", "403", "404", "403", "404", "403", "403", "403", "403", _I),
    ("PUT", "/api/v1/registry/{kind}/{item_id}"): SUPERVISOR_EDIT,
    ("DELETE", "/api/v1/registry/{kind}/{item_id}"): SUPERVISOR_DELETE,
    ("POST", "/api/v1/registry/{kind}/import"): SUPERVISOR_EDIT,
    ("POST", "/api/v1/registry/vehicles/{device_id}/reset-registration"): SUPERVISOR_EDIT,
    # the JT/T 809 platforms are the city's
    ("GET", "/api/v1/registry/platforms"): _city("200"),
    ("POST", "/api/v1/registry/platforms"): _city("201"),
    ("GET", "/api/v1/registry/platforms/{user_id}"): _city("200"),
    ("PUT", "/api/v1/registry/platforms/{user_id}"): _city("200"),
    ("DELETE", "/api/v1/registry/platforms/{user_id}"): _city("204"),
    ("POST", "/api/v1/registry/platforms/{user_id}/disable"): _city("200"),
    ("POST", "/api/v1/registry/platforms/{user_id}/enable"): _city("200"),
    # -- vehicles: the owner's own; units the vehicles in their care (or whose incident they see) ----
    # a theft report is taken by any station (the owner walks into the nearest one)
    ("POST", "/api/v1/vehicles/{device_id}/theft-report"):
        ("202",) * 6 + ("403", "403", "202/403", _I),  # 202: the incident opens after triage
    ("GET", "/api/v1/owner/vehicles"): ("403",) * 8 + ("+/-", _I),
    ("GET", "/api/v1/vehicles/{device_id}/state"): VEHICLE,
    ("POST", "/api/v1/vehicles/{device_id}/arm"): VEHICLE,
    ("POST", "/api/v1/vehicles/{device_id}/disarm"): VEHICLE,
    # -- people and sessions ------------------------------------------------------------------
    ("POST", "/api/v1/login"): PUBLIC,  # the password is the credential (rate-limited per source)
    ("POST", "/api/v1/logout"): ("204",) * 9 + (_I,),  # a fresh token of that role, revoked
    ("GET", "/api/v1/people"): SUPERVISOR_LIST,
    ("POST", "/api/v1/people"): SUPERVISOR_WRITE,
    ("POST", "/api/v1/people/{user}/password"):
        ("204", "403", "204/404", "403", "204/404", "403", "403", "403", "403", _I),
    ("POST", "/api/v1/people/{user}/disable"):
        ("204", "403", "204/404", "403", "204/404", "403", "403", "403", "403", _I),
    # the second factor: enrolment is the person's own, proven by the password (rate-limited as /login);
    # the reset is a supervisor's of the person's unit or above
    # the city's directory (OIDC): public, the provider authenticates; off in this test (404: not here)
    ("GET", "/api/v1/login/options"): PUBLIC,  # which sign-ins are offered (the console's button)
    ("GET", "/api/v1/login/oidc"): ("404",) * 10,
    ("GET", "/api/v1/login/oidc/callback"): ("404",) * 10,
    ("POST", "/api/v1/login/totp/enrol"): PUBLIC,
    ("POST", "/api/v1/login/totp/confirm"): PUBLIC,
    ("POST", "/api/v1/people/{user}/totp/reset"):
        ("204", "403", "204/404", "403", "204/404", "403", "403", "403", "403", _I),
    ("GET", "/api/v1/audit"): SUPERVISORS,
    # -- cameras: police units (503: live view is off in the test; 409: the camera has no stream URL) --
    ("POST", "/api/v1/cameras/{camera_id}/live"): ("503",) * 7 + ("403", "403", _I),
    ("GET", "/api/v1/cameras/{camera_id}/snapshot"): ("409",) * 7 + ("403", "403", _I),
    # 503: no ALARMHUB_CAMERA_COMMAND_TOKEN in the test, the GB/T 28181 catalog query is off
    ("GET", "/api/v1/cameras/{camera_id}/channels"): ("503",) * 7 + ("403", "403", _I),
    # -- outside the OpenAPI: the console, the base map, the media relay, the API's own description --
    ("GET", "/"): PUBLIC,  # the console's page and assets hold no data
    ("GET", "/console/{name}"): PUBLIC,
    ("GET", "/map/config"): PUBLIC,
    # the relay's URLs are capabilities: an unknown stream token is 404 whatever else is sent
    ("GET", "/media/{token}/{name}"): ("404",) * 10,
    ("POST", "/media/{token}/close"): ("204",) * 10,  # closing an unknown stream is a no-op
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
}

# -- outside dispatch: each surface has its own callers (test_authz_surfaces.py drives them) ---------

#: ingest-camera's HTTP intake (8081), who calls: no credential from a stranger's address; the intake
#: token of another registered camera (claiming this one); this camera's intake token; this camera's
#: registered address without a token; the webhook integrator the camera is registered to (signed);
#: another configured integrator (validly signed with its own secret); a dispatch user's token
CAMERA_CALLERS = (
    "anon", "other_camera", "camera_token", "camera_address", "integrator", "other_integrator", "user",
)
CAMERA_INTAKE: dict[tuple[str, str], tuple[str, ...]] = {
    # a push speaks for a registered camera with its token or from its address (ALARMHUB_CAMERA_INTAKE_AUTH)
    ("POST", "/events/isapi"): ("403", "403", "200", "200", "403", "403", "403"),
    ("POST", "/events/onvif"): ("403", "403", "200", "200", "403", "403", "403"),
    # signed per integrator (ALARMHUB_WEBHOOK_SECRETS); an integrator speaks only for its own cameras
    ("POST", "/events/webhook"): ("401", "401", "401", "401", "200", "403", "401"),
}

#: the GPS gateway's internal command port (9112), who calls: no credential; a dispatch user's token (a
#: city supervisor's); a wrong command token; dispatch (ALARMHUB_GPS_COMMAND_TOKEN)
GPS_COMMAND_CALLERS = ("anon", "user", "wrong_token", "dispatch")
GPS_COMMAND_PORT: dict[tuple[str, str], tuple[str, ...]] = {
    # 404: the terminal asked for is not connected — dispatch got in; everyone else learns nothing
    ("POST", "/commands"): ("401", "401", "401", "404"),
}

#: ingest-camera's internal command port (9121), who calls: no credential; a dispatch user's token; a wrong
#: command token; dispatch (ALARMHUB_CAMERA_COMMAND_TOKEN)
CAMERA_COMMAND_CALLERS = ("anon", "user", "wrong_token", "dispatch")
CAMERA_COMMAND_PORT: dict[tuple[str, str], tuple[str, ...]] = {
    # 200 with status not_registered: the device asked for is not registered — dispatch got in
    ("POST", "/gb28181/catalog"): ("401", "401", "401", "200"),
}

#: the health port of every service (9101-9105), who calls: no credential; a dispatch user's token. Open
#: to whoever reaches it, on purpose: Prometheus and the orchestrator's probes scrape it without
#: credentials, so it is never published outside the core/management network (deployment.md); what it
#: shows is counters and check names, no records
HEALTH_CALLERS = ("anon", "user")
HEALTH_SERVICES = ("dispatch", "ingest-camera", "ingest-contactid", "ingest-gps", "triage")
HEALTH_PORT: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/healthz"): ("200", "200"),
    ("GET", "/readyz"): ("200", "200"),
    ("GET", "/metrics"): ("200", "200"),
}
# fmt: on
