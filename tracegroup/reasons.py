"""Why a span opened a transaction, joined one, or was lost: the codes every grouping and delivery uses.

Contract: values are stable small integers (they are stored per span as int8); reports name them by
``Reason(code).name.lower()`` and explain them in :mod:`tracegroup.diff`'s cause lines.
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
