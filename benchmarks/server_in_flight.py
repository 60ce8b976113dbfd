"""`darknet-py server --in-flight 2` (the default on a CPU of 2 cores or more) against `--in-flight 1`, one detection at
a time: images answered per second and the median time of one answer, with 1, 2 and 4 clients sending at once
(each a thread of this process posting the 9 shared photos in turn, a new HTTP connection per request, as curl and
urllib make them). The two servers are the real program (`python -m darknet_py.cli server --port 0`), both up for the whole run; each round measures every
case once, in rotating order, and the figures are medians over the rounds. Official yolov4-tiny 416, torch on the
CPU, on this machine.

    python -m benchmarks.server_in_flight [--rounds 15] [--requests 36] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
IN_FLIGHT = (1, 2)
CLIENTS = (1, 2, 4)


def start(in_flight: int) -> tuple[subprocess.Popen, str]:
    """The server with --in-flight *in_flight* on a free port, up: (the process, its /detect URL)."""
    process = subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "server", "--cfg", str(CFG), "--weights",
                                str(WEIGHTS), "--port", "0", "--in-flight", str(in_flight)], cwd=REPO,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # its "serving … at URL" line: it answers from now on
        if line.startswith("serving "):
            return process, line.split(" at ", 1)[1].split(" ", 1)[0]
    raise SystemExit(f"the server with --in-flight {in_flight} did not start (exit {process.wait()})")


def post(url: str, body: bytes) -> float:
    """One POST /detect; seconds until the whole answer is read."""
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=300) as reply:
        reply.read()
    return time.perf_counter() - started


def measure(url: str, photos: list[bytes], clients: int, requests: int) -> tuple[float, float]:
    """*requests* posts from *clients* threads at once: (images answered per second, median seconds of one)."""
    bodies = [photos[i % len(photos)] for i in range(requests)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = list(pool.map(lambda body: post(url, body), bodies))
    return requests / (time.perf_counter() - started), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=36, help="posts per case per round (default 36: 4 × 9 photos)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    photos = [path.read_bytes() for path in sorted((SHARED / "data" / "images").glob("*.jpg"))]
    servers = {n: start(n) for n in IN_FLIGHT}
    cases = [(n, clients) for clients in CLIENTS for n in IN_FLIGHT]
    rates: dict[tuple[int, int], list[float]] = {case: [] for case in cases}
    latencies: dict[tuple[int, int], list[float]] = {case: [] for case in cases}
    try:
        for n in IN_FLIGHT:  # warm-up: each photo once through each server
            measure(servers[n][1], photos, 1, len(photos))
        for round_index in range(args.rounds):
            shift = round_index % len(cases)
            for n, clients in cases[shift:] + cases[:shift]:  # rotating order: no case always first
                rate, latency = measure(servers[n][1], photos, clients, args.requests)
                rates[(n, clients)].append(rate)
                latencies[(n, clients)].append(latency)
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    rows = []
    for clients in CLIENTS:
        one, two = (statistics.median(rates[(n, clients)]) for n in IN_FLIGHT)
        rows.append({"clients": clients,
                     "images_per_s": {str(n): round(statistics.median(rates[(n, clients)]), 2) for n in IN_FLIGHT},
                     "answer_ms_median": {str(n): round(statistics.median(latencies[(n, clients)]) * 1000, 1)
                                          for n in IN_FLIGHT},
                     "gain_in_flight_2": round(two / one, 3)})
    result = {"cpu": cpu_model(), "model": "yolov4-tiny 416, torch, cpu", "photos": len(photos),
              "rounds": args.rounds, "requests_per_case": args.requests, "cases": rows,
              "date": time.strftime("%Y-%m-%d")}
    write_json(args.out, "server_in_flight.json", result, indent=2)


if __name__ == "__main__":
    main()
