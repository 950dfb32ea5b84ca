"""Why a span opened a transaction, joined one, or was lost: the codes every grouping and delivery uses.

Contract: values are stable small integers (they are stored per span as int8); :data:`REASON_TEXT` holds
the one-line explanation reports print.
"""

from __future__ import annotations

import enum


class Reason(enum.IntEnum):
    JOINED = 0
    NO_PARENT = 1
    MISSING_PARENT = 2
    OTHER_SERVICE = 3
    REMOTE_PARENT = 4
    SERVER_KIND = 5
    CONSUMER_KIND = 6
    ORPHAN = 7
    OTHER_PROJECT = 8
    HEALED = 9
    DROPPED_NO_ROOT = 20
    DROPPED_UNROUTED = 21
    DROPPED_OVERWRITTEN = 22
    DROPPED_QUEUE_FULL = 23


#: One-line explanation of each reason, as reports print it.
REASON_TEXT: dict[Reason, str] = {
    Reason.JOINED: "joined its parent's transaction",
    Reason.NO_PARENT: "opened: no parent",
    Reason.MISSING_PARENT: "opened: parent not in the dump",
    Reason.OTHER_SERVICE: "opened: parent in another service",
    Reason.REMOTE_PARENT: "opened: parent-remote flag set",
    Reason.SERVER_KIND: "opened: SERVER span",
    Reason.CONSUMER_KIND: "opened: CONSUMER span",
    Reason.ORPHAN: "sent alone: parent not attached in the same exporter call",
    Reason.OTHER_PROJECT: "opened: parent in another Sentry project",
    Reason.HEALED: "parent missing; attached by --heal to the enclosing transaction of its service",
    Reason.DROPPED_NO_ROOT: "dropped: its exporter call had no transaction root",
    Reason.DROPPED_UNROUTED: "dropped: its service has no route to Sentry",
    Reason.DROPPED_OVERWRITTEN: "dropped: its transaction was replaced by one with the same root span id",
    Reason.DROPPED_QUEUE_FULL: "dropped: SDK export queue full",
}
