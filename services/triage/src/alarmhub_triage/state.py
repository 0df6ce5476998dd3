"""Triage's shared state in Redis: one script call per stage per batch, atomic on the server.

Several triage instances in one consumer group must agree on duplicates and incident identity, so
every read-then-write runs inside a Lua script (atomic on the server). Each stage sends its whole
batch to one script call as one JSON argument, which the script handles in order (events of one
batch see each other), answering with one string: one round trip and little client-side work,
which is what lets one process keep up with bursts (see ``bench/triage.py``).

Windows are checked in *event time* (``received_at``, kept in the values), not by key expiry: key
TTLs only collect garbage. That keeps decisions the same when a batch is replayed after a crash and
lets the evaluation replay hours of synthetic traffic in seconds.

Keys (all under ``prefix``; scripts build key names themselves, so this layout assumes one Redis
or a single-slot deployment, not a cluster):

- ``dd:<fingerprint>`` — ``event_id|ts`` of the first copy of a signal (dedup).
- ``sw:<device>:<zone>:<kind>`` — sorted set of recent new signals (swinger detection).
- ``corr:<key>`` — hash ``id``/``last``: the open incident of a site or vehicle.
- ``inc:<incident_id>`` — hash ``event_id → record JSON`` of its contributing events (bounded).
- ``ev:<event_id>`` — the incident an event was put in (memo: a replay lands in the same incident).
- ``cam:<bucket>`` / ``site:<bucket>`` — geo sets of recent camera events and alarm sites.
- ``area:<cell>`` — sorted set of sites alarming in a map cell (spike detection).
- ``fa:<device>`` — hash ``g``/``f``: genuine and false verdicts, ``t``: end of the device's test mode
  (epoch ms; read with the verdicts in one command); ``vd:<incident_id>`` — the verdict counted
  for that incident (each incident counts once, with its latest verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from redis.asyncio import Redis

from .model import dumps

__all__ = ["Correlation", "CorrelationRequest", "TriageState"]

# Every script takes ARGV[1] = key prefix, ARGV[2] = the batch as one JSON array (decoded by cjson on the
# server: one argument to pack instead of thousands), and answers with one string.
# Times travel as strings: Lua numbers are doubles and are only compared, never printed back.
# Redis runs on the same cores as triage, so the scripts save calls: a key's garbage-collection TTL is
# set once per script call (``touch``), not once per event, and trims run only when a set grew.

# batch: [[fingerprint, event_id, ts, window_ms, ttl_s], ...]. Answer: '1' owner / '0' duplicate, per event.
_DEDUP = """
local P = ARGV[1]
local out = {}
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local k = P .. 'dd:' .. e[1]
  local eid, ts = e[2], tonumber(e[3])
  -- the common case, a first copy, is one command: set if absent, answer the previous value (Redis >= 7.0)
  local v = redis.call('SET', k, eid .. '|' .. e[3], 'NX', 'GET', 'EX', e[5])
  local owner = eid
  if v then
    local sep = string.find(v, '|', 1, true)
    local id = string.sub(v, 1, sep - 1)
    if id == eid or math.abs(ts - tonumber(string.sub(v, sep + 1))) <= e[4] then owner = id end
  end
  if owner == eid then
    if v and string.sub(v, 1, #eid) ~= eid then redis.call('SET', k, eid .. '|' .. e[3], 'EX', e[5]) end
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return table.concat(out)
"""

# batch: [[key, event_id, ts, window_ms, count it (1) or only look (0)], ...]; ARGV[3] ttl.
# Answer: counts joined by ','.
_SWING = """
local P, ttl = ARGV[1], ARGV[3]
local out, touched = {}, {}
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local k = P .. 'sw:' .. e[1]
  local ts, win = tonumber(e[3]), e[4]
  local grew = e[5] == 1 and redis.call('ZADD', k, e[3], e[2]) == 1
  if grew and not touched[k] then redis.call('EXPIRE', k, ttl); touched[k] = true end
  local n = redis.call('ZCOUNT', k, string.format('%d', ts - win), e[3])
  -- stale entries (older than two windows) only cost memory: trim a set that repeats in the window,
  -- and a lone one now and then (one event id in 16), not at every signal
  if grew and (n > 1 or string.sub(e[2], -1) == '0') then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. string.format('%d', ts - 2 * win))
    if n > 1000 then redis.call('ZREMRANGEBYRANK', k, 0, -1001) end
  end
  out[#out + 1] = n
end
return table.concat(out, ',')
"""

# batch: [[key, candidate id, ts, window ms, may open (0/1), event id, record json, max records,
#          lon, lat, geo mode (0 none, 1 camera, 2 alarm site), radius m, camera window ms], ...];
# ARGV[3] ttl, ARGV[4] memo ttl. Answer: a JSON array, per event [id, opened, camera hits, [records]]
# or 0 when the event opened nothing (the records are stored JSON, concatenated as they are).
_CORRELATE = """
local P, ttl, memottl = ARGV[1], ARGV[3], ARGV[4]
local out, touched, placed, exists = {}, {}, {}, {}
local function touch(k)
  if not touched[k] then redis.call('EXPIRE', k, ttl); touched[k] = true end
end
-- geo buckets are few per call: ask once whether one exists, and search only those that do
local function has(k)
  local x = exists[k]
  if x == nil then x = redis.call('EXISTS', k) == 1; exists[k] = x end
  return x
end
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local ts = tonumber(e[3])
  local eid, mode = e[6], e[11]
  local lon, lat, radius = e[9], e[10], e[12]
  local camwin = e[13]
  local b = math.floor(ts / camwin)
  local ck = P .. 'corr:' .. e[1]
  local memo = P .. 'ev:' .. eid
  local known = redis.call('GET', memo)
  local camhits = 0
  if mode == 1 then
    local gk = P .. 'cam:' .. b
    redis.call('GEOADD', gk, lon, lat, e[3] .. ':' .. eid)
    exists[gk] = true
    touch(gk)
    if not known then
      local found = false
      for j = 0, 1 do
        local sk = P .. 'site:' .. (b - j)
        local hits = has(sk) and redis.call('GEOSEARCH', sk, 'FROMLONLAT', lon, lat,
                                            'BYRADIUS', radius, 'm', 'ASC', 'COUNT', 5) or {}
        for _, h in ipairs(hits) do
          local cur = redis.call('HMGET', P .. 'corr:' .. h, 'id', 'last')
          if cur[1] and math.abs(ts - tonumber(cur[2])) <= camwin then
            ck = P .. 'corr:' .. h
            found = true
            break
          end
        end
        if found then break end
      end
    end
  end
  local id = nil
  local opened = 0
  if known then
    id = known
  else
    local cur = redis.call('HMGET', ck, 'id', 'last')
    if cur[1] and (ts - tonumber(cur[2])) <= e[4] then
      id = cur[1]
      if ts > tonumber(cur[2]) then redis.call('HSET', ck, 'last', e[3]) end
    elseif e[5] == 1 then
      id = e[2]
      opened = 1
      redis.call('HSET', ck, 'id', id, 'last', e[3])
    end
    if id then redis.call('SET', memo, id, 'EX', memottl) end
  end
  if id then
    touch(ck)
    local ik = P .. 'inc:' .. id
    local held
    if opened == 1 then   -- a new incident's first record: the hash held nothing, unless this is a replay
      held = redis.call('HSET', ik, eid, e[7])
      if held == 0 then held = redis.call('HLEN', ik) end
    else
      held = redis.call('HLEN', ik)
      if held < e[8] then held = held + redis.call('HSET', ik, eid, e[7]) end
    end
    touch(ik)
    if mode == 2 then
      local gk = P .. 'site:' .. b
      local pk = gk .. ' ' .. e[1] .. ' ' .. lon .. ' ' .. lat
      if not placed[pk] then    -- a site alarming again in this call is already placed there
        redis.call('GEOADD', gk, lon, lat, e[1])
        placed[pk] = true
        exists[gk] = true
      end
      touch(gk)
      for j = 0, 1 do
        local sk = P .. 'cam:' .. (b - j)
        local hits = has(sk) and redis.call('GEOSEARCH', sk, 'FROMLONLAT', lon, lat, 'BYRADIUS', radius, 'm') or {}
        for _, h in ipairs(hits) do
          local t = tonumber(string.sub(h, 1, string.find(h, ':', 1, true) - 1))
          if math.abs(ts - t) <= camwin then camhits = camhits + 1 end
        end
      end
    end
    -- an incident of one signal is that signal: the client already has its record
    local recs = ''
    if opened == 0 or held > 1 then recs = table.concat(redis.call('HVALS', ik), ',') end
    out[#out + 1] = '["' .. id .. '",' .. opened .. ',' .. camhits .. ',[' .. recs .. ']]'
  else
    out[#out + 1] = '0'
  end
end
return '[' .. table.concat(out, ',') .. ']'
"""

# batch: [[area cell ('' none), site key, ts, area window ms, device, test op ('', 's', 'e'), test until], ...];
# ARGV[3] ttl. Answer per item: 'sites,genuine,false,test_until' joined by ';'.
_CONTEXT = """
local P, ttl = ARGV[1], ARGV[3]
local out, touched = {}, {}
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local n = 0
  if e[1] ~= '' then
    local k = P .. 'area:' .. e[1]
    local ts, win = tonumber(e[3]), e[4]
    -- a new site in the cell drops the stale ones now and then (one second in 16): memory only, the
    -- count reads the window, and the set never outgrows the cell's sites
    if redis.call('ZADD', k, 'GT', e[3], e[2]) == 1 and math.floor(ts / 1000) % 16 == 0 then
      redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. string.format('%d', ts - 2 * win))
    end
    if not touched[k] then redis.call('EXPIRE', k, ttl); touched[k] = true end
    n = redis.call('ZCOUNT', k, string.format('%d', ts - win), e[3])
  end
  -- the device's hash holds its verdicts (g, f) and the end of its test mode (t): one read
  local dk = P .. 'fa:' .. e[5]
  if e[6] == 's' then redis.call('HSET', dk, 't', e[7])
  elseif e[6] == 'e' then redis.call('HDEL', dk, 't') end
  local fa = redis.call('HMGET', dk, 'g', 'f', 't')
  out[#out + 1] = n .. ',' .. (fa[1] or 0) .. ',' .. (fa[2] or 0) .. ',' .. (fa[3] or 0)
end
return table.concat(out, ';')
"""

# batch: [[incident id, device, 'g' | 'f' | 'n'], ...]. Each incident counts once, with its latest verdict:
# ``vd:<incident>`` holds the verdict counted now; a different one moves the count ('n' = none: test, or
# a verdict withdrawn), the same one again (a replay) changes nothing. Answer: how many items changed a count.
_VERDICT = """
local P = ARGV[1]
local n = 0
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local vk = P .. 'vd:' .. e[1]
  local old = redis.call('GET', vk)
  if old ~= e[3] then
    local fk = P .. 'fa:' .. e[2]
    if old == 'g' or old == 'f' then
      if tonumber(redis.call('HINCRBY', fk, old, -1)) < 0 then redis.call('HSET', fk, old, 0) end
    end
    if e[3] == 'g' or e[3] == 'f' then redis.call('HINCRBY', fk, e[3], 1) end
    redis.call('SET', vk, e[3], 'EX', 2592000)
    n = n + 1
  end
end
return n
"""


class CorrelationRequest(NamedTuple):
    key: str
    candidate_id: str
    ts: int
    window_ms: int
    may_open: bool
    event_id: str
    record_json: str
    max_records: int
    lonlat: tuple[float, float] | None
    geo_mode: int            # 0 none, 1 camera event, 2 alarm site
    radius_m: float
    camera_window_ms: int


class Correlation(NamedTuple):
    incident_id: str | None
    opened: bool
    records: list[dict[str, Any]]   # the incident's stored records, decoded
    camera_hits: int


class ContextRequest(NamedTuple):
    area_cell: str | None
    site_key: str
    ts: int
    area_window_ms: int
    device: str
    test_op: str = ""        # '' none, 's' start test mode until test_until, 'e' end it
    test_until: int = 0


class ContextAnswer(NamedTuple):
    area_sites: int
    verdicts: tuple[int, int]
    test_until: int


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class TriageState:
    """Redis-backed state shared by triage instances. Each method is one script call (one round trip)."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int, memo_ttl_s: int = 1800) -> None:
        self._r = redis
        self.prefix = prefix
        self.ttl_s = max(60, int(ttl_s))
        self._memo_ttl_s = memo_ttl_s
        self._scripts = {name: redis.register_script(src) for name, src in
                         (("dedup", _DEDUP), ("swing", _SWING), ("correlate", _CORRELATE),
                          ("context", _CONTEXT), ("verdict", _VERDICT))}

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def _call(self, name: str, batch: list[Any], *extra: Any) -> Any:
        # redis-py's Script runs EVALSHA and loads the script on NOSCRIPT (first use, or a restarted Redis).
        payload = dumps(batch)
        return await self._scripts[name](keys=[], args=[self.prefix, payload, *extra])

    async def claim(self, reqs: Sequence[tuple[str, str, int, int, int]]) -> list[bool]:
        """Per (fingerprint, event_id, ts, window_ms, ttl_s): does this event own the signal (not a duplicate)?"""
        if not reqs:
            return []
        batch = [[fp, eid, str(ts), win, ttl] for fp, eid, ts, win, ttl in reqs]
        return [c == "1" for c in _s(await self._call("dedup", batch))]

    async def swing(self, reqs: Sequence[tuple[str, str, int, int, bool]]) -> list[int]:
        """Per (key, event_id, ts, window_ms, count it): how many new signals of that key fell in the window.

        A signal that is not counted (a restore) only looks.
        """
        if not reqs:
            return []
        batch = [[k, eid, str(ts), win, 1 if add else 0] for k, eid, ts, win, add in reqs]
        return [int(x) for x in _s(await self._call("swing", batch, self.ttl_s)).split(",")]

    async def correlate(self, reqs: Sequence[CorrelationRequest]) -> list[Correlation]:
        if not reqs:
            return []
        batch = []
        for q in reqs:
            lon, lat = q.lonlat if q.lonlat else (0.0, 0.0)
            batch.append([q.key, q.candidate_id, str(q.ts), q.window_ms, 1 if q.may_open else 0, q.event_id,
                          q.record_json, q.max_records, lon, lat, q.geo_mode if q.lonlat else 0, q.radius_m,
                          max(1, q.camera_window_ms)])
        out = []
        for res in orjson.loads(await self._call("correlate", batch, self.ttl_s, self._memo_ttl_s)):
            if not res:
                out.append(Correlation(None, False, [], 0))
            else:
                out.append(Correlation(res[0], bool(res[1]), res[3], int(res[2])))
        return out

    async def context(self, reqs: Sequence[ContextRequest]) -> list[ContextAnswer]:
        """Per item: distinct sites alarming in its map cell, its device's verdicts, its test-mode end."""
        if not reqs:
            return []
        batch = [[q.area_cell or "", q.site_key, str(q.ts), q.area_window_ms, q.device, q.test_op, str(q.test_until)]
                 for q in reqs]
        out = []
        for part in _s(await self._call("context", batch, self.ttl_s)).split(";"):
            n, g, f, t = part.split(",")
            out.append(ContextAnswer(int(n), (int(g), int(f)), int(t)))
        return out

    async def record_verdicts(self, items: Sequence[tuple[str, str, str]]) -> int:
        """Per (incident_id, device, 'g'|'f'|'n'), in order: each incident counts once, with its latest verdict
        ('n': none). A replayed verdict changes nothing. Returns how many items changed a count."""
        if not items:
            return 0
        return int(await self._call("verdict", [list(it) for it in items]))
