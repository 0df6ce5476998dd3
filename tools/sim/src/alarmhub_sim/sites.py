"""Demo alarm sites: deterministic, inside the city's real districts (WGS-84), for the simulator.

The anchor points are well inside each district; a site is an anchor plus a small seeded jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DISTRICT_ANCHORS", "Site", "demo_sites"]

#: (adcode, name, lat, lon) — WGS-84 points well inside each Shenzhen district.
DISTRICT_ANCHORS: tuple[tuple[str, str, float, float], ...] = (
    ("440304", "福田区", 22.5410, 114.0550),
    ("440303", "罗湖区", 22.5480, 114.1310),
    ("440305", "南山区", 22.5330, 113.9300),
    ("440306", "宝安区", 22.5550, 113.8830),
    ("440307", "龙岗区", 22.7210, 114.2470),
    ("440308", "盐田区", 22.5800, 114.2300),
    ("440309", "龙华区", 22.6560, 114.0440),
    ("440310", "坪山区", 22.7080, 114.3460),
    ("440311", "光明区", 22.7490, 113.9360),
)


@dataclass(frozen=True)
class Site:
    line: str
    account: str
    company: str
    name: str
    address: str
    lat: float
    lon: float
    district: str
    key_hex: str | None = None

    @property
    def device_id(self) -> str:
        return f"L{self.line}#{self.account}"

    def registry_record(self) -> dict[str, object]:
        """The body of ``POST /api/v1/registry/accounts`` for this site."""
        return {
            "line": self.line,
            "account": self.account,
            "company": self.company,
            "key_hex": self.key_hex,
            "encryption_required": self.key_hex is not None,
            "supervision_s": 300,
            "site": {
                "name": self.name,
                "address": self.address,
                "lat": self.lat,
                "lon": self.lon,
                "zones": {"001": "front door", "002": "hall PIR", "003": "back window", "004": "safe"},
            },
        }


def demo_sites(
    n: int, *, seed: int = 7, line: str = "1", company: str = "demo-security", encrypted_share: float = 0.0
) -> list[Site]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        code, dname, lat, lon = DISTRICT_ANCHORS[i % len(DISTRICT_ANCHORS)]
        key = None
        if rng.random() < encrypted_share:
            key = bytes(rng.getrandbits(8) for _ in range(16)).hex().upper()
        out.append(
            Site(
                line=line,
                account=f"{1000 + i:04d}",
                company=company,
                name=f"演示站点 {i + 1} ({dname})",
                address=f"{dname} synthetic address {i + 1}",
                lat=round(lat + rng.uniform(-0.012, 0.012), 6),
                lon=round(lon + rng.uniform(-0.012, 0.012), 6),
                district=code,
                key_hex=key,
            )
        )
    return out
