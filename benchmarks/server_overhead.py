"""What `darknet-py server` adds to a detection: the time of a POST /detect (a new HTTP connection each, as curl and
urllib make them; the body sent, decoded, detected, answered as JSON) against `model.detect` of the same JPEG bytes
in this process, medians of interleaved rounds, official yolov4-tiny on the 9 shared photos, on this machine's CPU.
The server runs in this process (darknet_py.live.detect_api, the code of the command) on a free port. Also
`model.detect` on a fresh thread per call, which is what detecting on the server's own request threads cost (the
service detects on one thread that stays instead).

    python -m benchmarks.server_overhead [--rounds 15] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import darknet_py
from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.live.detect_api import DetectService, listen, serve

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    model = darknet_py.load(CFG, WEIGHTS)
    photos = [path.read_bytes() for path in sorted((SHARED / "data" / "images").glob("*.jpg"))]
    server = listen("127.0.0.1", 0)
    service = DetectService(lambda body, thresh, nms, classes: model.detect(body, thresh, nms, classes=classes)[0],
                            "yolov4-tiny", model.names)
    serve(server, service)
    url = f"http://127.0.0.1:{server.server_address[1]}/detect"
    direct, posted, fresh = [], [], []

    def on_a_fresh_thread(body: bytes) -> None:
        def timed() -> None:
            started = time.perf_counter()
            model.detect(body)
            fresh.append(time.perf_counter() - started)
        thread = threading.Thread(target=timed)
        thread.start()
        thread.join()

    try:
        for body in photos:  # warm-up: both paths once per photo
            model.detect(body)
            urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()
        for _ in range(args.rounds):
            for body in photos:
                started = time.perf_counter()
                model.detect(body)
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")) as reply:
                    reply.read()
                posted.append(time.perf_counter() - started)
        same = []  # a second pass, interleaved with the fresh threads (a thread's start and end disturb the next call)
        for _ in range(args.rounds):
            for body in photos:
                started = time.perf_counter()
                model.detect(body)
                same.append(time.perf_counter() - started)
                on_a_fresh_thread(body)
    finally:
        server.shutdown()
        server.server_close()
        service.close()
    direct_ms, posted_ms = statistics.median(direct) * 1000, statistics.median(posted) * 1000
    result = {"cpu": cpu_model(), "model": "yolov4-tiny 416", "photos": len(photos), "rounds": args.rounds,
              "detect_ms_median": round(direct_ms, 2), "post_ms_median": round(posted_ms, 2),
              "overhead_ms_median": round(posted_ms - direct_ms, 2),
              "second_pass_detect_ms_median": round(statistics.median(same) * 1000, 2),
              "fresh_thread_detect_ms_median": round(statistics.median(fresh) * 1000, 2),
              "date": time.strftime("%Y-%m-%d")}
    write_json(args.out, "server_overhead.json", result, indent=2)


if __name__ == "__main__":
    main()
