"""Dates as the outputs write them: ISO 8601 UTC to the millisecond (records', events' and recordings' `utc`)."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_text(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC to the millisecond, `Z` for UTC.

    Args:
        epoch (float): seconds since 1970-01-01 UTC.

    Returns:
        str: e.g. `2026-12-07T08:05:22.585Z`.
    """
    return utc_datetime(epoch).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_stamp(epoch: float) -> str:
    """Epoch seconds as ISO 8601's basic format to the millisecond, for file names: `20261207T082411.557Z`."""
    milliseconds = round(epoch * 1000)
    return f"{utc_datetime(milliseconds // 1000).strftime('%Y%m%dT%H%M%S')}.{milliseconds % 1000:03d}Z"


def utc_datetime(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, timezone.utc)
