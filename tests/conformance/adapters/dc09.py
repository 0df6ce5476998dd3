"""DC-09 frames through ingest-contactid's decoder (framing, header, AES, SIA-DCS / ADM-CID payloads).

Vocabulary: token, encrypted, seq, receiver, line, account, data, extended, timestamp (ISO 8601, UTC),
events: [{code, number|zone, kind, qualifier, partition}]. ``context.key`` is the AES key as hex. A frame
given without its LF/CR (as pysiaalarm writes its test lines) is wrapped; a bare body (starting with the
quoted token) is decoded as a body.
"""

from __future__ import annotations

from typing import Any

from alarmhub_ingest_contactid.protocols import contactid, dc09, sia


def payload_events(token: str, data: str) -> list[dict[str, Any]]:
    if token == "ADM-CID":
        cid = contactid.decode(data)
        return [
            {
                "account": cid.account,
                "code": cid.code,
                "event": cid.event,
                "kind": cid.kind.value,
                "qualifier": cid.qualifier.value,
                "partition": cid.partition,
                "zone": cid.number,
                "concerns": cid.concerns,
            }
        ]
    if token == "SIA-DCS":
        account, events = sia.decode(data)
        return [
            {
                "account": account,
                "code": e.code,
                "number": e.number,
                "kind": e.kind.value,
                "qualifier": e.qualifier.value,
                "text": e.text,
            }
            for e in events
        ]
    return []


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    key = bytes.fromhex(context["key"]) if context.get("key") else None
    if frame.startswith(b'"'):
        msg = dc09.decode_message(dc09.decode_header(frame), key)
    else:
        if not frame.startswith(b"\n"):
            frame = b"\n" + frame + b"\r"
        msg = dc09.decode(frame, key)
    return {
        "token": msg.token,
        "encrypted": msg.encrypted,
        "seq": msg.seq,
        "receiver": msg.receiver,
        "line": msg.line,
        "account": msg.account,
        "data": msg.data,
        "extended": list(msg.extended),
        "timestamp": msg.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if msg.timestamp else None,
        # an empty block carries no event (the receiver answers an empty SIA-DCS with DUH)
        "events": payload_events(msg.token, msg.data) if msg.data else [],
    }
