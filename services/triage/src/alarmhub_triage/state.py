"""Triage's shared state in Redis: one script call per chunk of a batch, atomic on the server.

Several triage instances in one consumer group must agree on duplicates and incident identity, so
every read-then-write runs inside a Lua script (atomic on the server). A chunk of a batch (the
pipeline cuts a partition's batch into chunks of a few hundred records and sends their calls one after
the other) goes to ONE script call (dedup, swinger count, context and correlation of every event, in
order) as one JSON argument, which the script handles event by event (events of one call see each
other; later calls see earlier ones' writes), answering with one string: one round trip, one request per
event to pack and one answer to parse, which is what lets one process keep up with bursts (see
``bench/triage.py``).

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

__all__ = ["StateAnswer", "StateParams", "StateRequest", "TriageState"]

# Every script takes ARGV[1] = key prefix, ARGV[2] = the batch as one JSON array (decoded by cjson on the
# server: one argument to pack instead of thousands), and answers with one string.
# Times travel as strings: Lua numbers are doubles and are only compared, never printed back.
# Redis runs on the same cores as triage, so the scripts save calls: a key's garbage-collection TTL is
# set once per script call (``touch``), not once per event, and trims run only when a set grew.

# One call per chunk does everything its events need from the shared state: dedup, swinger counting, the
# context (area spike, verdicts, test mode) and correlation, event by event in batch order. One round trip,
# one JSON decode of one request per event, and every key name built once per event.
#
# ARGV: [3] ttl s, [4] memo ttl s, [5] swinger window ms, [6] swinger limit, [7] trouble-key window ms,
# [8] max records per incident, [9] camera radius m, [10] camera window ms, [11] area window ms.
# batch: per event [1 fingerprint, 2 event id, 3 ts, 4 dedup window ms, 5 dedup ttl s,
#   6 swinger key ('' not watched), 7 counted (1 new / 0 restore: only looks), 8 device,
#   9 correlation key, 10 its idle window ms, 11 may open (0/1), 12 geo mode (0 none, 1 camera, 2 site),
#   13 lon, 14 lat, 15 candidate incident id, 16 record json, 17 area cell ('' none),
#   18 test op ('', 's' start until 19, 'e' end), 19 test until].
# A swinger's first throttled signal (a report) goes to the device's trouble key 't:<device>' instead:
# it may open, has no place and no area cell.
# Answer: a JSON array, per event "d" (duplicate), "t" (swinger throttled), "i" (informational: in no
# incident), or [incident id, opened, camera hits, [records], area sites, genuine, false, test until,
# swinger report (0/1)] (the records are the stored JSON, concatenated as they are).
_TRIAGE = """
local P, ttl, memottl = ARGV[1], ARGV[3], ARGV[4]
local swwin, swlimit, twin = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local maxrec, radius, camwin, areawin = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
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
  local eid, sts = e[2], e[3]
  local ts = tonumber(sts)
  -- dedup: the first copy within the window owns the signal; a replay of the owner is not a duplicate.
  -- The common case, a first copy, is one command: set if absent, answer the previous value (Redis >= 7.0)
  local dk = P .. 'dd:' .. e[1]
  local v = redis.call('SET', dk, eid .. '|' .. sts, 'NX', 'GET', 'EX', e[5])
  local answer = nil
  if v then
    local sep = string.find(v, '|', 1, true)
    local id = string.sub(v, 1, sep - 1)
    if id ~= eid then
      if math.abs(ts - tonumber(string.sub(v, sep + 1))) <= e[4] then answer = '"d"'
      else redis.call('SET', dk, eid .. '|' .. sts, 'EX', e[5]) end
    end
  end
  -- swingers: new signals per device/zone/kind in the window (a restore only looks)
  local report = 0
  if not answer and e[6] ~= '' then
    local sk = P .. 'sw:' .. e[6]
    local grew = e[7] == 1 and redis.call('ZADD', sk, sts, eid) == 1
    if grew and not touched[sk] then redis.call('EXPIRE', sk, ttl); touched[sk] = true end
    local n = redis.call('ZCOUNT', sk, string.format('%d', ts - swwin), sts)
    -- stale entries (older than two windows) only cost memory: trim a set that repeats in the window,
    -- and a lone one now and then (one event id in 16), not at every signal
    if grew and (n > 1 or string.sub(eid, -1) == '0') then
      redis.call('ZREMRANGEBYSCORE', sk, '-inf', '(' .. string.format('%d', ts - 2 * swwin))
      if n > 1000 then redis.call('ZREMRANGEBYRANK', sk, 0, -1001) end
    end
    if e[7] == 1 then
      if n == swlimit + 1 then report = 1 elseif n > swlimit + 1 then answer = '"t"' end
    elseif n > swlimit then answer = '"t"' end
  end
  if answer then
    out[#out + 1] = answer
  else
    local key, win, mayopen, mode, cell = e[9], e[10], e[11], e[12], e[17]
    if report == 1 then key, win, mayopen, mode, cell = 't:' .. e[8], twin, 1, 0, '' end
    -- context: distinct sites alarming in the map cell
    local sites = 0
    if cell ~= '' then
      local ak = P .. 'area:' .. cell
      -- a new site in the cell drops the stale ones now and then (one second in 16): memory only, the
      -- count reads the window, and the set never outgrows the cell's sites
      if redis.call('ZADD', ak, 'GT', sts, key) == 1 and math.floor(ts / 1000) % 16 == 0 then
        redis.call('ZREMRANGEBYSCORE', ak, '-inf', '(' .. string.format('%d', ts - 2 * areawin))
      end
      touch(ak)
      sites = redis.call('ZCOUNT', ak, string.format('%d', ts - areawin), sts)
    end
    -- the device's hash holds its verdicts (g, f) and the end of its test mode (t): one read
    local fk = P .. 'fa:' .. e[8]
    if e[18] == 's' then redis.call('HSET', fk, 't', e[19])
    elseif e[18] == 'e' then redis.call('HDEL', fk, 't') end
    local fa = redis.call('HMGET', fk, 'g', 'f', 't')
    local testuntil = fa[3] or '0'
    local rec = e[16]
    -- raised in test mode: the incident remembers it (the record's 'm' flag)
    if tonumber(testuntil) > ts then rec = string.sub(rec, 1, -2) .. ',"m":1}' end
    -- correlation
    local lon, lat = e[13], e[14]
    local b = math.floor(ts / camwin)
    local ck = P .. 'corr:' .. key
    local memo = P .. 'ev:' .. eid
    local known = redis.call('GET', memo)
    local camhits = 0
    if mode == 1 then
      local gk = P .. 'cam:' .. b
      redis.call('GEOADD', gk, lon, lat, sts .. ':' .. eid)
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
      if cur[1] and (ts - tonumber(cur[2])) <= win then
        id = cur[1]
        if ts > tonumber(cur[2]) then redis.call('HSET', ck, 'last', sts) end
      elseif mayopen == 1 then
        id = e[15]
        opened = 1
        redis.call('HSET', ck, 'id', id, 'last', sts)
      end
      if id then redis.call('SET', memo, id, 'EX', memottl) end
    end
    if id then
      touch(ck)
      local ik = P .. 'inc:' .. id
      local held
      if opened == 1 then   -- a new incident's first record: the hash held nothing, unless this is a replay
        held = redis.call('HSET', ik, eid, rec)
        if held == 0 then held = redis.call('HLEN', ik) end
      else
        held = redis.call('HLEN', ik)
        if held < maxrec then held = held + redis.call('HSET', ik, eid, rec) end
      end
      touch(ik)
      if mode == 2 then
        local gk = P .. 'site:' .. b
        local pk = gk .. ' ' .. key .. ' ' .. lon .. ' ' .. lat
        if not placed[pk] then    -- a site alarming again in this call is already placed there
          redis.call('GEOADD', gk, lon, lat, key)
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
      out[#out + 1] = '["' .. id .. '",' .. opened .. ',' .. camhits .. ',[' .. recs .. '],' .. sites .. ','
                      .. (fa[1] or 0) .. ',' .. (fa[2] or 0) .. ',' .. testuntil .. ',' .. report .. ']'
    else
      out[#out + 1] = '"i"'
    end
  end
end
return '[' .. table.concat(out, ',') .. ']'
"""

# batch: [[incident id, device, 'g' | 'f' | 'n'], ...]. Each incident counts once, with its latest verdict:
# ``vd:<incident>`` holds the verdict counted now; a different one moves the count ('n' = none: test, or
# a verdict withdrawn), the same one again (a replay) changes nothing. Answer: how many items changed a count.
_VERDICT = """
local P = ARGV[1]
local n = 0
for _, e in ipairs(cjson.decode(ARGV[2])) do
  local vk = P .. 'vd:' .. e[1]
  local sk = P .. 'vs:' .. e[1]
  local seq = tonumber(e[4]) or 0
  local held = tonumber(redis.call('GET', sk) or '0')
  local old = redis.call('GET', vk)
  if seq > 0 and seq <= held then
    -- an event older than (or the same as) the incident's one already counted: ignored
  elseif seq > 0 then
    redis.call('SET', sk, seq, 'EX', 2592000)
  end
  if (seq == 0 or seq > held) and old ~= e[3] then
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


class StateRequest(NamedTuple):
    """What one event asks of the shared state (the fields of ``_TRIAGE``'s per-event array, in order)."""

    fingerprint: str
    event_id: str
    ts: int
    dedup_window_ms: int
    dedup_ttl_s: int
    swinger_key: str  # '' when the event is not watched for swinging
    counted: bool  # a new signal (counted); a restore only looks
    device: str
    key: str  # correlation key
    window_ms: int  # its idle window
    may_open: bool
    geo_mode: int  # 0 none, 1 camera event, 2 alarm site
    lonlat: tuple[float, float] | None
    candidate_id: str
    record_json: str
    area_cell: str  # '' none
    test_op: str = ""  # '' none, 's' start test mode until test_until, 'e' end it
    test_until: int = 0


class StateParams(NamedTuple):
    """The rules' constants of one call (the same for every event of the batch)."""

    swinger_window_ms: int
    swinger_limit: int
    trouble_window_ms: int
    max_records: int
    radius_m: float
    camera_window_ms: int
    area_window_ms: int


class StateAnswer(NamedTuple):
    """One event's outcome. ``dropped``: 'duplicate', 'swinger_throttled', 'informational' or None."""

    dropped: str | None
    incident_id: str | None = None
    opened: bool = False
    records: Sequence[dict[str, Any]] = ()  # the incident's stored records, decoded (empty: only this event)
    camera_hits: int = 0
    area_sites: int = 0
    verdicts: tuple[int, int] = (0, 0)
    test_until: int = 0
    swinger_report: bool = False


_DROPPED = {
    "d": StateAnswer("duplicate"),
    "t": StateAnswer("swinger_throttled"),
    "i": StateAnswer("informational"),
}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class TriageState:
    """Redis-backed state shared by triage instances. Each method is one script call (one round trip)."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int, memo_ttl_s: int = 1800) -> None:
        self._r = redis
        self.prefix = prefix
        self.ttl_s = max(60, int(ttl_s))
        self._memo_ttl_s = memo_ttl_s
        self._scripts = {
            name: redis.register_script(src) for name, src in (("triage", _TRIAGE), ("verdict", _VERDICT))
        }

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    def _args(self, batch: list[Any], *extra: Any) -> list[Any]:
        """A script's arguments: the key prefix, the batch as one JSON argument, then the scalars."""
        return [self.prefix, dumps(batch), *extra]

    async def _eval(self, name: str, args: list[Any]) -> Any:
        # redis-py's Script runs EVALSHA and loads the script on NOSCRIPT (first use, or a restarted Redis).
        return await self._scripts[name](keys=[], args=args)

    async def _call(self, name: str, batch: list[Any], *extra: Any) -> Any:
        return await self._eval(name, self._args(batch, *extra))

    async def triage(self, reqs: Sequence[StateRequest], p: StateParams) -> list[StateAnswer]:
        """Dedup, swinger count, context and correlation of a batch, in order, in one atomic script call."""
        if not reqs:
            return []
        return await self.triage_packed(self.pack(reqs, p))

    def pack(self, reqs: Sequence[StateRequest], p: StateParams) -> list[Any]:
        """The script's arguments for ``reqs`` (CPU only: the caller may pack the next chunk while Redis
        runs the previous one, and send it with :meth:`triage_packed` once that one answered)."""
        batch = []
        for q in reqs:
            lon, lat = q.lonlat if q.lonlat else (0.0, 0.0)
            batch.append(
                [
                    q.fingerprint,
                    q.event_id,
                    str(q.ts),
                    q.dedup_window_ms,
                    q.dedup_ttl_s,
                    q.swinger_key,
                    1 if q.counted else 0,
                    q.device,
                    q.key,
                    q.window_ms,
                    1 if q.may_open else 0,
                    q.geo_mode if q.lonlat else 0,
                    lon,
                    lat,
                    q.candidate_id,
                    q.record_json,
                    q.area_cell,
                    q.test_op,
                    str(q.test_until),
                ]
            )
        return self._args(
            batch,
            self.ttl_s,
            self._memo_ttl_s,
            p.swinger_window_ms,
            p.swinger_limit,
            p.trouble_window_ms,
            p.max_records,
            p.radius_m,
            max(1, p.camera_window_ms),
            p.area_window_ms,
        )

    async def triage_packed(self, args: list[Any]) -> list[StateAnswer]:
        """One script call with arguments from :meth:`pack`; the answers in the requests' order."""
        raw = await self._eval("triage", args)
        out = []
        for a in orjson.loads(raw):
            if isinstance(a, str):
                out.append(_DROPPED[a])
            else:
                out.append(
                    StateAnswer(None, a[0], a[1] == 1, a[3], a[2], a[4], (a[5], a[6]), a[7], a[8] == 1)
                )
        return out

    async def verdicts(self, devices: Sequence[str]) -> list[tuple[int, int]]:
        """Per device: (genuine, false) verdicts counted so far (a read; tests and tools)."""
        async with self._r.pipeline(transaction=False) as pipe:
            for d in devices:
                pipe.hmget(f"{self.prefix}fa:{d}", "g", "f")
            res = await pipe.execute()
        return [(int(g or 0), int(f or 0)) for g, f in res]

    async def record_verdicts(self, items: Sequence[tuple[str, str, str] | tuple[str, str, str, int]]) -> int:
        """Per (incident_id, device, 'g'|'f'|'n'[, seq]), in order: each incident counts once, with its latest
        verdict ('n': none). A replayed verdict changes nothing; with the event's ``seq`` (>0), one older than
        the incident's last counted event is ignored. Returns how many items changed a count."""
        if not items:
            return 0
        return int(await self._call("verdict", [list(it) for it in items]))
