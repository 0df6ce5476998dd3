"""Generate ``proto/`` from the models: one JSON Schema per message and an AsyncAPI 3 document.

``alarmhub-proto`` writes the files; ``alarmhub-proto --check`` exits 1 when the committed
files differ from what the models produce (the drift test calls :func:`render` directly). Services add
documents of their own through the ``alarmhub.proto`` entry point group (a callable returning
``{path under proto/: text}``): dispatch's ``openapi.json``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ._topics import TOPICS

__all__ = ["main", "render"]


def _schema_id(model: Any) -> str:
    return str(model.model_fields["schema_"].default)


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render() -> dict[str, str]:
    """Return ``{relative path: file text}`` for everything under ``proto/``."""
    files: dict[str, str] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in TOPICS:
        sid = _schema_id(spec.model)
        schema = spec.model.model_json_schema(by_alias=True, mode="serialization")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": sid, **schema}
        fname = f"schemas/{sid}.schema.json"
        files[fname] = _dump(schema)
        msg_name = spec.model.__name__
        messages[msg_name] = {
            "name": msg_name,
            "title": msg_name,
            "contentType": "application/json",
            "summary": (spec.model.__doc__ or "").strip().splitlines()[0],
            "payload": {"$ref": f"./{fname}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": spec.key}}},
        }
        ch = spec.name.replace(".", "_")
        channels[ch] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {msg_name: {"$ref": f"#/components/messages/{msg_name}"}},
            "bindings": {
                "kafka": {
                    "partitions": spec.partitions,
                    "replicas": 3,
                    "topicConfiguration": {"min.insync.replicas": 2},
                }
            },
        }
        operations[f"publish_{ch}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{ch}"},
            "summary": "produced by " + ", ".join(spec.producers),
        }
    asyncapi = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "alarmhub topics",
            "version": "1.0.0",
            "description": "Every Kafka topic of alarmhub. Generated from alarmhub_events; do not edit.",
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    files["asyncapi.json"] = _dump(asyncapi)
    files["vocabulary.json"] = _dump(_vocabulary())
    for ep in sorted(entry_points(group="alarmhub.proto"), key=lambda e: e.name):
        files.update(ep.load()())
    return files


def _members(enum: Any) -> dict[str, str]:
    return {m.value: _doc(enum, m.name) for m in enum}


def _doc(owner: Any, name: str) -> str:
    """The attribute docstring written under ``name`` in ``owner``'s source (what the docs say of each word)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(owner)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for stmt, nxt in itertools.pairwise(body):
        target = getattr(stmt, "target", None) or (getattr(stmt, "targets", None) or [None])[0]
        if (
            getattr(target, "id", None) == name
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            return str(nxt.value.value)
    return ""


def _vocabulary() -> dict[str, Any]:
    """The words of ``AlarmEvent.attributes`` that ingest services write and triage's rules read."""
    from ._vocabulary import SENSOR, VEHICLE_ATTRIBUTES, Sensor, VehicleAttr, VehicleSignal

    keys = {n: getattr(VehicleAttr, n) for n in vars(VehicleAttr) if n.isupper()}
    by_value = {v: _doc(VehicleAttr, n) for n, v in keys.items()}
    return {
        "description": "Attribute words of alarmhub.alarm.v1 shared by ingest and triage. Generated from "
        "alarmhub_events; do not edit.",
        "vehicle": {
            "attributes": {k: by_value[k] for k in VEHICLE_ATTRIBUTES},
            "signals": _members(VehicleSignal),
        },
        "sensor": {"attribute": SENSOR, "values": sorted(m.value for m in Sensor)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("proto"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    args = parser.parse_args(argv)
    drift = []
    for rel, text in render().items():
        path = args.out / rel
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and drift:
        print("proto/ is out of date with the models: " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
