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
    seconds, milliseconds = _to_the_millisecond(epoch)
    return f"{utc_datetime(seconds).strftime('%Y-%m-%dT%H:%M:%S')}.{milliseconds:03d}Z"


def utc_stamp(epoch: float) -> str:
    """Epoch seconds as ISO 8601's basic format to the millisecond, for file names: `20261207T082411.557Z`."""
    seconds, milliseconds = _to_the_millisecond(epoch)
    return f"{utc_datetime(seconds).strftime('%Y%m%dT%H%M%S')}.{milliseconds:03d}Z"


def _to_the_millisecond(epoch: float) -> tuple[int, int]:
    """Epoch seconds rounded to the millisecond, as (whole seconds, milliseconds): one rounding for the dates in the
    records and in file names, so that a frame's file and its record name the same millisecond (isoformat's
    truncation named .556 where the file said .557)."""
    return divmod(round(epoch * 1000), 1000)


def utc_datetime(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, timezone.utc)
