"""A real RTSP server for the camera tests: GStreamer's (gst-rtsp-server), serving a video file as a camera does.

Run with the system Python, which has PyGObject (python3-gi) and the GStreamer typelibs (tests/run.sh installs
the Debian packages); the project's venv has neither:

    /usr/bin/python3 tests/rtsp_server.py VIDEO --port 8554 [--path /cam] [--size 320x180] [--fps 25]

The file is decoded, scaled, paced to the clock (real-time rate, as a camera sends) and looped for ever; the RTSP
side re-encodes it to H.264 (x264, zero latency) for every client. Two pipelines joined by GStreamer's
inter elements: the player loops the file (a seek back to the start at its end, which a launch line inside the
RTSP factory could not do) and the factory's pipeline only encodes the newest picture, so a client that joins
late, or after a restart, gets the live picture at once.

When the server listens it prints one line, `ready rtsp://127.0.0.1:PORT/PATH`, on standard output: tests wait
for that line instead of sleeping. It runs until it is killed (the tests kill it to simulate a camera dropping,
and start it again on the same port).
"""
from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 - after the version pins, as PyGObject needs

CHANNEL = "darknet-py-camera"  # the inter elements' shared name: player → RTSP encoder


def player(video: str, width: int, height: int, fps: int) -> Gst.Pipeline:
    """The file decoded, scaled and paced to the clock (intervideosink syncs, as a display would)."""
    pipeline = Gst.parse_launch(
        "filesrc name=file ! decodebin ! videoconvert ! videoscale ! "
        f"video/x-raw,width={width},height={height} ! videorate ! video/x-raw,framerate={fps}/1 ! "
        f"intervideosink channel={CHANNEL}")
    pipeline.get_by_name("file").set_property("location", video)  # a property: no quoting rules for the path
    return pipeline


def loop_at_end(pipeline: Gst.Pipeline) -> None:
    """Seek back to the start when the file ends, so the 'camera' never stops on its own."""
    def on_message(bus: Gst.Bus, message: Gst.Message) -> bool:
        if message.type == Gst.MessageType.EOS:
            pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif message.type == Gst.MessageType.ERROR:
            error, _ = message.parse_error()
            print(f"rtsp_server: player error: {error.message}", file=sys.stderr, flush=True)
            sys.exit(1)
        return True

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)


def rtsp_server(port: int, path: str, width: int, height: int, fps: int) -> GstRtspServer.RTSPServer:
    """An RTSP server on 127.0.0.1:port with one shared H.264 mount at *path*."""
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( intervideosrc channel={CHANNEL} ! video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        f"videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=1000 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)  # one encoder for every client, as a camera has
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    server.get_mount_points().add_factory(path, factory)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed on the ready line)")
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--size", default="320x180", help="WxH sent")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    Gst.init(None)
    pipeline = player(args.video, width, height, args.fps)
    loop_at_end(pipeline)
    pipeline.set_state(Gst.State.PLAYING)
    server = rtsp_server(args.port, args.path, width, height, args.fps)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
