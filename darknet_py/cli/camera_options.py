"""detect's options for live sources (cameras, RTSP/HTTP streams): reconnects and latest-frame mode."""
from __future__ import annotations

import argparse

from ..media.live_reader import LiveSourceOptions


def add_camera_args(p: argparse.ArgumentParser) -> None:
    """--reconnect N and --keep-all-frames, in their own help group."""
    group = p.add_argument_group("cameras and live streams (rtsp://, http(s):// without a length, webcam index)")
    group.add_argument("--reconnect", type=int, metavar="N",
                       help="after a drop, give up after N reconnect tries (waits of 1 s doubling to 30 s between "
                            "them) and exit 1; default: reconnect for ever")
    group.add_argument("--keep-all-frames", action="store_true",
                       help="detect every frame, queued (detection may fall behind the camera); default: only the "
                            "newest frame each time, the ones in between dropped and counted (files keep every frame)")


def live_source_options(args) -> LiveSourceOptions:
    """The options the flags give, checked (InputError for a negative --reconnect)."""
    options = LiveSourceOptions(reconnect=args.reconnect, keep_all_frames=args.keep_all_frames)
    options.check()
    return options
