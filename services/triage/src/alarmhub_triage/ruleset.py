"""The rules file: YAML validated into a :class:`RuleSet` at start-up and on every reload.

Rules are configuration, not code (issue 6): thresholds, priors, windows and point values live in the
YAML file, the stages only interpret them. ``RuleSet.version`` is the file's own ``version`` plus a
short hash of its bytes, so that an edit without a version bump is still distinguishable on decisions.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from alarmhub_events import AlarmKind, VehicleSignal
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_RULES", "RuleSet", "RulesError", "load_rules", "parse_rules"]


class RulesError(ValueError):
    """The rules file is unreadable or invalid; the previous rules stay active."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_M):
    dispatch: int = Field(70, ge=0, le=100)
    verify: int = Field(40, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.verify > self.dispatch:
            raise ValueError("thresholds.verify must not exceed thresholds.dispatch")
        return self


class Dedup(_M):
    default_s: float = Field(60, gt=0)
    by_kind: dict[AlarmKind, float] = Field(default_factory=dict)

    def window_s(self, kind: AlarmKind) -> float:
        return self.by_kind.get(kind, self.default_s)


class Correlation(_M):
    site_window_s: float = Field(3600, gt=0)
    vehicle_window_s: float = Field(1800, gt=0)
    camera_radius_m: float = Field(300, gt=0)
    camera_window_s: float = Field(600, gt=0)
    max_events_per_incident: int = Field(200, ge=1, le=10_000)


class Confirmation(_M):
    window_s: float = Field(2700, gt=0)
    cross_zone_points: int = 30
    adjacent_zone_points: int = 10
    principle_points: int = 30


class Camera(_M):
    corroboration_points: int = 30


class Cancel(_M):
    window_s: float = Field(300, gt=0)
    points: int = -60
    opening_qualifier: str = "new"


class Restore(_M):
    points: int = 0


Step = Annotated[list[VehicleSignal], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class VehiclePattern(_M):
    """One piece of vehicle evidence, in one of three shapes:

    - ``sequence``: the incident's alarms carry these ``attributes.signal`` values in this order (each
      step one signal or a list of alternatives); with ``moving``, the last step's ``speed_kmh`` is at
      least ``vehicle.parked_speed_kmh``;
    - ``kinds`` (+ ``attributes``): one alarm of these kinds carrying these attribute values;
    - ``all_of``: alarms of all these kinds within the incident, in any order.
    """

    name: str
    kinds: list[AlarmKind] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    all_of: list[AlarmKind] = Field(default_factory=list)
    sequence: list[Step] = Field(default_factory=list)
    moving: bool = False
    points: int
    text: str
    text_zh: str

    @model_validator(mode="after")
    def _one_shape(self) -> VehiclePattern:
        if sum(map(bool, (self.kinds, self.all_of, self.sequence))) != 1:
            raise ValueError(
                f"vehicle pattern {self.name}: give one of kinds (+attributes), all_of or sequence"
            )
        if self.sequence and len(self.sequence) < 2:
            raise ValueError(f"vehicle pattern {self.name}: a sequence has at least two steps")
        if self.moving and not self.sequence:
            raise ValueError(f"vehicle pattern {self.name}: moving applies to a sequence's last step")
        return self


class Vehicle(_M):
    patterns: list[VehiclePattern] = Field(default_factory=list)
    parked_speed_kmh: float = Field(10, gt=0)
    max_plausible_speed_kmh: float = 220
    implausible_track_points: int = -20
    verify_text: str = "ask the registered owner first (call back or the owner's app)"
    verify_text_zh: str = "先与登记车主核实（回拨或车主端确认）"


class History(_M):
    prior_false_rate: float = Field(0.9, gt=0, lt=1)
    prior_strength: float = Field(10, gt=0)
    max_points: int = Field(30, ge=0, le=100)
    min_verdicts: int = Field(2, ge=0)


class TestMode(_M):
    start_codes: list[str] = Field(default_factory=list)
    end_codes: list[str] = Field(default_factory=list)
    duration_s: float = Field(3600, gt=0)
    points: int = -80


class Maintenance(_M):
    device: str = Field(description="source device id (or DC-09 account) under maintenance")
    start: AwareDatetime
    end: AwareDatetime
    note: str = ""
    points: int = -80

    def covers(self, device_id: str, account: str | None, at: datetime) -> bool:
        return self.device in (device_id, account) and self.start <= at < self.end


class Swinger(_M):
    window_s: float = Field(3600, gt=0)
    limit: int = Field(4, ge=1)


class Area(_M):
    cell_deg: float = Field(0.01, gt=0, le=1)
    window_s: float = Field(600, gt=0)
    sites: int = Field(8, ge=2)


class RuleSet(_M):
    version: str = Field(min_length=1, max_length=48)
    digest: str = ""
    thresholds: Thresholds = Thresholds()
    immediate: frozenset[AlarmKind] = frozenset()
    trouble: frozenset[AlarmKind] = frozenset()
    informational: frozenset[AlarmKind] = frozenset()
    priors: dict[str, int] = Field(default_factory=dict)
    priority: dict[str, int] = Field(default_factory=dict)
    dedup: Dedup = Dedup()
    correlation: Correlation = Correlation()
    intrusion_kinds: frozenset[AlarmKind] = frozenset()
    confirmation: Confirmation = Confirmation()
    camera: Camera = Camera()
    cancel: Cancel = Cancel()
    restore: Restore = Restore()
    vehicle: Vehicle = Vehicle()
    history: History = History()
    test_mode: TestMode = TestMode()
    maintenance: list[Maintenance] = Field(default_factory=list)
    swinger: Swinger = Swinger()
    area: Area = Area()

    @model_validator(mode="after")
    def _check(self) -> RuleSet:
        kinds = {k.value for k in AlarmKind} | {"default"}
        for name, table in (("priors", self.priors), ("priority", self.priority)):
            unknown = set(table) - kinds
            if unknown:
                raise ValueError(f"{name}: unknown kinds {sorted(unknown)}")
        if any(not 0 <= v <= 100 for v in self.priors.values()):
            raise ValueError("priors must lie in 0..100")
        if any(not 1 <= v <= 5 for v in self.priority.values()):
            raise ValueError("priority must lie in 1..5")
        if self.immediate & self.trouble:
            raise ValueError("a kind cannot be both immediate and trouble")
        return self

    @property
    def rule_version(self) -> str:
        return f"{self.version}#{self.digest}" if self.digest else self.version

    def prior(self, kind: AlarmKind) -> int:
        return self.priors.get(kind.value, self.priors.get("default", 30))

    def priority_of(self, kind: AlarmKind) -> int:
        return self.priority.get(kind.value, self.priority.get("default", 3))

    @property
    def longest_window_s(self) -> float:
        """Redis keys live this long (wall clock); the windows themselves are checked in event time."""
        c = self.correlation
        return max(
            c.site_window_s,
            c.vehicle_window_s,
            c.camera_window_s,
            self.confirmation.window_s,
            self.swinger.window_s,
            self.area.window_s,
            self.dedup.default_s,
            *self.dedup.by_kind.values(),
            self.test_mode.duration_s,
        )


def parse_rules(text: bytes | str) -> RuleSet:
    data = text.encode() if isinstance(text, str) else text
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules file is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise RulesError("rules file must be a mapping")
    doc["digest"] = hashlib.sha256(data).hexdigest()[:8]
    try:
        return RuleSet.model_validate(doc)
    except ValueError as exc:
        raise RulesError(str(exc)) from exc


def load_rules(path: Path | str | None = None) -> RuleSet:
    """Load and validate ``path``, or the packaged defaults when ``path`` is None."""
    if path is None:
        return parse_rules(DEFAULT_RULES.read_bytes())
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from exc
    return parse_rules(data)


DEFAULT_RULES = resources.files("alarmhub_triage.rules").joinpath("default.yaml")
