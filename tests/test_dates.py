"""The dates the outputs write (records' and events' `utc`, file names of a camera's frames and clips) against Python's
own datetime: the same millisecond in both forms, rounded (not truncated), for any epoch."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from darknet_py.core.dates import utc_stamp, utc_text


def test_a_dates_text_and_file_stamp_name_the_same_millisecond_rounded() -> None:
    generator = random.Random(7)
    epochs = [0.0, 0.0004, 0.0005, 1765095864.5566, 1765095864.9996, 1765095864.9994]
    epochs += [generator.uniform(0, 4e9) for _ in range(2000)]
    for epoch in epochs:
        nearest = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=round(epoch * 1000))
        text = utc_text(epoch)
        assert datetime.fromisoformat(text.replace("Z", "+00:00")) == nearest, (epoch, text)
        assert text.endswith("Z") and len(text) == len("2026-12-07T08:05:22.585Z")
        assert utc_stamp(epoch) == text.replace("-", "").replace(":", ""), epoch
