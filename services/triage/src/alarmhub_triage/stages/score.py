"""Authenticity score (0–100) with reasons, from the rules file. Pure: an item and rules in, a score out.

The score starts from the strongest alarm kind's prior in the incident, then each piece of evidence
adds or removes points, each one a :class:`Reason` with English and Chinese text and its weight:
cross-zone / sequential confirmation, different sensing principles, camera corroboration, vehicle
theft patterns, an implausible track, the device's learned false-alarm rate, a cancel or opening in
the cancel window, test mode and maintenance windows.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from datetime import UTC, datetime

from alarmhub_events import AlarmKind, Qualifier, Reason, VehicleAttr, VehicleSignal

from ..model import Item, Record
from ..ruleset import RuleSet
from ._base import Context

__all__ = ["ScoreStage", "memo_key", "score"]

_KIND_ZH = {
    "panic": "紧急求助",
    "duress": "胁迫报警",
    "burglary": "入侵报警",
    "fire": "火警",
    "medical": "医疗求助",
    "tamper": "防拆报警",
    "vehicle_theft": "车辆防盗报警",
    "vehicle_sos": "车辆紧急求助",
    "vibration": "震动报警",
    "power_cut": "断电报警",
    "geofence": "越界报警",
    "overspeed": "超速报警",
    "motion": "移动侦测",
    "intrusion": "区域入侵",
    "line_crossing": "越线检测",
    "trouble": "设备故障",
    "supervision": "通信巡检失败",
    "open_close": "布撤防",
    "test": "测试报告",
    "cancel": "取消报告",
    "other": "其他报警",
}


def kind_zh(kind: AlarmKind) -> str:
    return _KIND_ZH.get(kind.value, kind.value)


@functools.lru_cache(maxsize=4096)
def _r(code: str, text: str, text_zh: str, weight: float | None) -> Reason:
    # Reasons are frozen and mostly repeat (same rule, same words): build each distinct one once.
    return Reason(code=code, text=text, text_zh=text_zh, weight=weight)


def _alarms(history: list[Record], rules: RuleSet) -> list[Record]:
    new, informational = Qualifier.NEW, rules.informational
    return [x for x in history if x.qualifier is new and x.kind not in informational]


def _lead(alarms: list[Record], rules: RuleSet) -> AlarmKind:
    """The strongest alarm kind of the incident (highest prior; the first on a tie)."""
    kinds = list(dict.fromkeys(x.kind for x in alarms))
    return kinds[0] if len(kinds) == 1 else max(kinds, key=rules.prior)


@functools.lru_cache(maxsize=1024)
def _prior_reason(lead: AlarmKind, total: float) -> Reason:
    return Reason(
        code=f"prior_{lead.value}",
        text=f"{lead.value.replace('_', ' ')} signal: starting score {int(total)}",
        text_zh=f"{kind_zh(lead)}：初始分 {int(total)}",
        weight=total,
    )


def _adjacent(zones: set[str]) -> bool:
    nums = sorted(int(z) for z in zones if z.isdigit())
    return any(b - a == 1 for a, b in itertools.pairwise(nums))


def _attrs_match(rec: Record, want: dict[str, object]) -> bool:
    return all(rec.attrs.get(k) == v for k, v in want.items())


def _in_sequence(alarms: list[Record], steps: list[list[VehicleSignal]], min_speed: float | None) -> bool:
    """The alarms' ``signal`` attributes pass through ``steps`` in order (others may come between);
    with ``min_speed``, the alarm that completes the last step reports at least that speed."""
    i, last = 0, len(steps) - 1
    for x in alarms:
        sig = x.attrs.get(VehicleAttr.SIGNAL)
        if sig is None or sig not in steps[i]:
            continue
        if i == last and min_speed is not None:
            speed = x.attrs.get(VehicleAttr.SPEED_KMH)
            if not isinstance(speed, int | float) or speed < min_speed:
                continue
        if i == last:
            return True
        i += 1
    return False


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


#: What an evidence rule gives: the points it adds, each with its reason (weight = those points).
Evidence = list[tuple[float, Reason]]


def _confirmation(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Cross-zone / sequential confirmation (BS 8243; adjacent zones or different principles, CN practice)."""
    conf = rules.confirmation
    panel = [x for x in alarms if x.kind in rules.intrusion_kinds and not x.camera]
    if not panel:
        return []
    out: Evidence = []
    first = panel[0].t
    within = [x for x in panel if x.t - first <= conf.window_s * 1000]
    zones = {x.zone for x in within if x.zone}
    if len(zones) >= 2:
        out.append(
            (
                conf.cross_zone_points,
                _r(
                    "cross_zone",
                    f"{len(zones)} different zones tripped within {int(conf.window_s // 60)} min",
                    f"{int(conf.window_s // 60)} 分钟内 {len(zones)} 个不同防区相继报警",
                    conf.cross_zone_points,
                ),
            )
        )
        if _adjacent(zones):
            out.append(
                (
                    conf.adjacent_zone_points,
                    _r(
                        "adjacent_zones",
                        "adjacent zones tripped in succession",
                        "相邻防区相继触发",
                        conf.adjacent_zone_points,
                    ),
                )
            )
    principles = {x.principle for x in within if x.principle}
    if len(principles) >= 2:
        out.append(
            (
                conf.principle_points,
                _r(
                    "different_principles",
                    "detectors of different sensing principles agree (" + ", ".join(sorted(principles)) + ")",
                    "不同探测原理的探测器同时报警",
                    conf.principle_points,
                ),
            )
        )
    return out


def _camera(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Camera corroboration within radius and window."""
    site_alarm = any(not x.camera for x in alarms)
    camera_seen = any(x.camera for x in history) or it.camera_hits > 0
    if not (site_alarm and camera_seen):
        return []
    pts = rules.camera.corroboration_points
    reason = _r(
        "camera_corroboration",
        f"camera motion or intrusion within "
        f"{int(rules.correlation.camera_radius_m)} m and {int(rules.correlation.camera_window_s // 60)}"
        " min",
        f"{int(rules.correlation.camera_radius_m)} 米范围内摄像机同时检测到移动或入侵",
        pts,
    )
    return [(pts, reason)]


def _vehicle(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Vehicle theft patterns and track consistency."""
    if not it.corr_key.startswith("v:"):
        return []
    out: Evidence = []
    kinds = {x.kind for x in alarms}
    for pat in rules.vehicle.patterns:
        if pat.sequence:
            hit = _in_sequence(alarms, pat.sequence, rules.vehicle.parked_speed_kmh if pat.moving else None)
        elif pat.all_of:
            hit = set(pat.all_of) <= kinds
        else:
            hit = any(x.kind in pat.kinds and _attrs_match(x, pat.attributes) for x in alarms)
        if hit:
            out.append((pat.points, _r(f"vehicle_{pat.name}", pat.text, pat.text_zh, pat.points)))
    speeds = [
        float(x.attrs["speed_kmh"]) for x in history if isinstance(x.attrs.get("speed_kmh"), int | float)
    ]
    if speeds and max(speeds) > rules.vehicle.max_plausible_speed_kmh:
        pts = rules.vehicle.implausible_track_points
        reason = _r(
            "implausible_track",
            f"reported speed {max(speeds):.0f} km/h is implausible",
            f"上报速度 {max(speeds):.0f} 公里/小时不合理，轨迹可疑",
            pts,
        )
        out.append((pts, reason))
    return out


def _device_history(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """The device's own false-alarm history (Beta prior updated by dispatchers' verdicts)."""
    h = rules.history
    g, f = it.verdicts
    if not (g + f >= h.min_verdicts and h.max_points):
        return []
    a = h.prior_strength
    post = (a * h.prior_false_rate + f) / (a + g + f)
    post = min(max(post, 0.001), 0.999)
    pts = round(
        max(
            -h.max_points,
            min(h.max_points, (h.max_points / 3) * (_logit(h.prior_false_rate) - _logit(post))),
        )
    )
    if not pts:
        return []
    reason = _r(
        "device_history",
        f"this device's learned false-alarm rate is {post:.0%} ({f} false, {g} genuine)",
        f"该设备历史误报率 {post:.0%}（误报 {f} 次，真警 {g} 次）",
        pts,
    )
    return [(pts, reason)]


def _cancel(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Cancel report or user opening inside the cancel window after the first alarm (SIA CP-01)."""
    if not alarms:
        return []
    start = alarms[0].t
    cw = rules.cancel.window_s * 1000
    for x in history:
        is_cancel = x.kind == AlarmKind.CANCEL or (
            x.kind == AlarmKind.OPEN_CLOSE and x.qualifier.value == rules.cancel.opening_qualifier
        )
        if is_cancel and 0 <= x.t - start <= cw:
            what = "cancel report" if x.kind == AlarmKind.CANCEL else "user opening (disarm)"
            reason = _r(
                "cancel_in_window",
                f"{what} {int((x.t - start) / 1000)} s after the alarm, "
                f"inside the {int(rules.cancel.window_s // 60)}-min cancel window",
                f"报警后 {int((x.t - start) / 1000)} 秒内收到"
                f"{'取消报告' if x.kind == AlarmKind.CANCEL else '用户撤防'}（在取消窗口内）",
                rules.cancel.points,
            )
            return [(rules.cancel.points, reason)]
    return []


def _test_mode(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Alarms raised while the device was in test mode (a walk test) stay discounted after it ends."""
    if not (all(x.test for x in alarms) if alarms else it.test_mode):
        return []
    reason = _r(
        "test_mode",
        "raised while the account was in test mode",
        "报警发生在测试状态期间",
        rules.test_mode.points,
    )
    return [(rules.test_mode.points, reason)]


def _maintenance(it: Item, alarms: list[Record], history: list[Record], rules: RuleSet) -> Evidence:
    """Inside a maintenance window of the device or account (the first window that covers it)."""
    if not rules.maintenance:
        return []
    ev = it.event
    at = datetime.fromtimestamp(it.ts / 1000, UTC)
    for m in rules.maintenance:
        if m.covers(ev.source.device_id, ev.source.account, at):
            reason = _r(
                "maintenance",
                f"inside a maintenance window{': ' + m.note if m.note else ''}",
                f"处于维护时段{'：' + m.note if m.note else ''}",
                m.points,
            )
            return [(m.points, reason)]
    return []


#: The evidence rules in the order their reasons are listed; each adds its points to the prior.
EVIDENCE_RULES: tuple[Callable[[Item, list[Record], list[Record], RuleSet], Evidence], ...] = (
    _confirmation,
    _camera,
    _vehicle,
    _device_history,
    _cancel,
    _test_mode,
    _maintenance,
)


def score(it: Item, rules: RuleSet) -> tuple[int, list[Reason]]:
    """The incident's score: the strongest kind's prior, then every rule's points, clamped to 0–100."""
    history = it.history or [it.record]
    alarms = _alarms(history, rules)
    lead = _lead(alarms, rules) if alarms else it.event.kind
    total = float(rules.prior(lead))
    reasons: list[Reason] = [_prior_reason(lead, total)]
    if it.swinger_report:
        return 0, [
            *reasons,
            _r(
                "swinger",
                f"device repeated the same signal more than {rules.swinger.limit} "
                f"times within {int(rules.swinger.window_s // 60)} min: throttled",
                f"设备在 {int(rules.swinger.window_s // 60)} 分钟内重复发送同一信号超过 "
                f"{rules.swinger.limit} 次，已限流",
                None,
            ),
        ]
    for rule in EVIDENCE_RULES:
        for pts, reason in rule(it, alarms, history, rules):
            total += pts
            reasons.append(reason)
    return max(0, min(100, round(total))), reasons


def memo_key(it: Item, rules: RuleSet) -> tuple[object, ...] | None:
    """Everything :func:`score` (and :func:`~.decide.decide`, but for the area count) reads of an incident
    of ONE signal, or None when it may read more (maintenance windows read the clock and the device).

    One signal has no second zone, principle or time to compare: what remains is the signal's kind,
    qualifier, camera and test flags and kept attributes, the key's class, the device's verdicts, the
    camera hits and test mode. Most decisions are first signals of their incident, and their inputs repeat.
    """
    if rules.maintenance:
        return None
    h = it.history
    x = h[0] if h else it.record
    try:
        attrs = tuple(sorted(x.attrs.items())) if x.attrs else ()
        hash(attrs)
    except TypeError:  # a list or a mapping among the kept attributes: not memoised
        return None
    return (
        x.kind,
        x.qualifier,
        x.camera,
        x.test,
        attrs,
        it.event.kind,
        it.swinger_report,
        it.corr_key[:2],
        it.camera_hits > 0,
        it.verdicts,
        it.test_mode,
    )


class ScoreStage:
    """Scores every item; an incident of one signal is scored once per distinct :func:`memo_key` and the
    result reused while the rules stay the same (the score is a pure function of those inputs)."""

    name = "score"
    # shape-only boilerplate shared with DecideStage (a memo per rule set): docs/architecture.md
    # pylint: disable=duplicate-code

    def __init__(self, memo_size: int = 20_000) -> None:
        self._memo: dict[tuple[object, ...], tuple[int, list[Reason]]] = {}
        self._memo_rules: RuleSet | None = None
        self._memo_size = memo_size

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        rules = ctx.rules
        memo = self._memo
        if self._memo_rules is not rules:
            memo.clear()
            self._memo_rules = rules
        for it in items:
            key = memo_key(it, rules) if len(it.history) <= 1 else None
            it.memo_key = key
            if key is None:
                it.score, it.reasons = score(it, rules)
                continue
            hit = memo.get(key)
            if hit is None:
                if len(memo) >= self._memo_size:
                    memo.clear()
                hit = memo[key] = score(it, rules)
            it.score, it.reasons = hit[0], list(hit[1])
        return items
