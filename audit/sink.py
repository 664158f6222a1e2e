"""The audit log's external, append-only sink: one JSON line per event, after its commit.

Every appended event goes to the logger `portal.audit.events` once its transaction has
committed (nothing for a transaction rolled back), as one line:

    {"action":"certificate.issued","actor":"approver","hash":"…","id":42,"key_id":"1",
     "object":"enrollment.certificate:7","previous_hash":"…","timestamp":"2026-…","v":1}

No details and no secret: the line names the event, and its hash (an HMAC under the chain
key) ties it to the row. Shipped off-host (PORTAL_AUDIT_SYSLOG, `syslog_handler` below, or
any handler in LOGGING), it is a copy the database's administrators cannot rewrite:
`verify_audit_log --sink FILE` checks that every event it names is still in the log, unchanged.
No Django models here (LOGGING builds the handler before the apps load).
"""

from __future__ import annotations

import json
import logging
import socket
from logging.handlers import SysLogHandler
from pathlib import Path

event_logger = logging.getLogger("portal.audit.events")
SINK_VERSION = 1


def sink_line(event) -> str:
    return json.dumps(
        {
            "v": SINK_VERSION,
            "id": event.pk,
            "timestamp": event.timestamp.isoformat(timespec="microseconds"),
            "action": event.action,
            "actor": event.actor_name or None,
            "object": f"{event.object_type}:{event.object_id}" if event.object_type else "",
            "previous_hash": event.previous_hash,
            "hash": event.hash,
            "key_id": event.key_id,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def sink_emit(event) -> None:
    event_logger.info("%s", sink_line(event))


def sink_read(path) -> list[tuple[int, dict | None]]:
    """(line number, the event's fields or None if unreadable) for each event line of a collected file.

    A collector may prefix each line (syslog's time, host and tag): the JSON is read from the
    first "{". Lines that are no event lines of this sink (other programs' messages) are skipped.
    """
    result: list[tuple[int, dict | None]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            start = line.find("{")
            if start < 0 or '"previous_hash"' not in line:
                continue
            try:
                data = json.loads(line[start:])
            except ValueError:
                result.append((number, None))
                continue
            if not isinstance(data, dict) or data.get("v") != SINK_VERSION:
                result.append((number, None))
                continue
            if not isinstance(data.get("id"), int) or not isinstance(data.get("hash"), str):
                result.append((number, None))
                continue
            result.append((number, data))
    return result


def syslog_handler(*, address: str, facility: str = "local0") -> SysLogHandler:
    """A SysLogHandler from one string: udp://host:514, tcp://host:6514 or a socket path (/dev/log).

    For LOGGING: {"()": "audit.sink.syslog_handler", "address": "tcp://logs.example.org:514"}.
    TCP (or a local relay such as rsyslog forwarding over TLS) loses nothing when the collector
    is briefly away; UDP may.
    """
    if address.startswith(("udp://", "tcp://")):
        host, _, port = address[6:].rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"syslog address {address!r} is not udp://host:port or tcp://host:port")
        target: str | tuple[str, int] = (host.strip("[]"), int(port))
        socktype = socket.SOCK_STREAM if address.startswith("tcp://") else socket.SOCK_DGRAM
    else:
        target, socktype = str(Path(address)), None
    handler = SysLogHandler(address=target, facility=facility, socktype=socktype)
    handler.ident = "smime-portal-audit: "
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
