"""What `detect --watch` costs while it waits, and how soon it takes a new image, beside the peer people use to watch a
folder on a share: watchdog's PollingObserver (which reads the whole folder at every interval).

Two folders: an empty one, and one of 100,000 images already done (a camera's month of snapshots never moved away).
- Idle: CPU seconds a minute of watching costs, each watcher in a fresh process for IDLE_S seconds from its start
  (20 for the empty folder, 90 for the big one: its start's reading of every file and the next one), nothing arriving:
  `WatchedFolder` as `--watch` runs it (inotify, and a look every second: the folder's own time, its list when that
  changed, every file's state every FULL_LOOK_S), the same with every look reading every file's state (what --watch's
  first version did), and watchdog's PollingObserver (timeout 1 s). Interleaved rounds, medians.
- Latency: from a JPEG's close (written by another thread of the same process) to the watcher having it: `WatchedFolder`
  with inotify, by looking only (poll 1 s: the second look that finds it unchanged takes it), and PollingObserver's
  event for it (which says a file appeared, not that it is whole). Medians over LATENCY_FILES files.

    python -m benchmarks.watch [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.media import watched_folder
from darknet_py.media.watched_folder import FileState, WatchedFolder

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "images" / "dog.jpg"
FILES = 100_000
IDLE_S = {0: 20.0, FILES: 90.0}  # the big folder over more than one FULL_LOOK_S period (its start's reading included)
LATENCY_FILES = 10
POLL_S = 1.0
WATCHERS = ("--watch", "--watch, every look reading every file's state", "watchdog PollingObserver")


def make_folder(root: Path, files: int) -> Path:
    """A folder of *files* small JPEG-named files (what the watcher lists and stats; their content is never read)."""
    folder = root / f"folder-{files}"
    folder.mkdir()
    for index in range(files):
        (folder / f"{index:07d}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    return folder


def _ours(folder: Path, whole_reads: bool, inotify: bool = True) -> WatchedFolder:
    """A WatchedFolder over *folder* with every image there already done (as a run's watched.jsonl would list them)."""
    watched = WatchedFolder(folder, POLL_S, inotify=inotify)
    for entry in os.scandir(folder):
        watched.done[entry.name] = FileState.of(Path(entry.path))
    if whole_reads:  # every look reads the list and every file's state, as --watch's first version did
        def every_state() -> dict:
            found = watched._read_folder("", every_state=True, now=time.monotonic())
            return {name: state for name, state in found.items() if watched._pending(name, state)}

        watched._look = every_state
    return watched


def child_idle(watcher: str, folder: Path, seconds: float) -> None:
    """In a child process: watch *folder* for *seconds*, then print the CPU seconds this process spent doing it."""
    if watcher == WATCHERS[2]:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers.polling import PollingObserver

        observer = PollingObserver(timeout=POLL_S)
        observer.schedule(FileSystemEventHandler(), str(folder), recursive=False)
        start = os.times()
        observer.start()
        time.sleep(seconds)
        observer.stop()
        observer.join()
    else:
        watched = _ours(folder, whole_reads=watcher == WATCHERS[1])
        start = os.times()
        consumer = threading.Thread(target=lambda: [None for _ in watched], daemon=True)
        consumer.start()
        time.sleep(seconds)
        if not consumer.is_alive():  # the watcher failed: its CPU time would mean nothing
            raise RuntimeError(f"{watcher}: the watch ended before its {seconds:g} s")
        watched.close()
        consumer.join()
    end = os.times()
    print((end.user - start.user) + (end.system - start.system))


def idle_cpu(watcher: str, folder: Path, seconds: float) -> float:
    """CPU seconds per minute of *watcher* on *folder* over *seconds* from its start (a fresh process; Python's and
    the imports' start-up, and marking the folder's images done, not counted)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.watch", "--child", str(WATCHERS.index(watcher)),
                           str(folder), str(seconds)], check=True, cwd=REPO, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1]) * 60.0 / seconds


def latency(kind: str, folder: Path) -> float:
    """Median seconds from a new JPEG's close to *kind*'s watcher having it, over LATENCY_FILES files."""
    got: dict[str, float] = {}
    arrived = threading.Event()
    if kind == "watchdog PollingObserver":
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers.polling import PollingObserver

        class Note(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                name = Path(event.src_path).name
                if name.startswith("new-") and name not in got:
                    got[name] = time.perf_counter()
                    arrived.set()

        observer = PollingObserver(timeout=POLL_S)
        observer.schedule(Note(), str(folder), recursive=False)
        observer.start()
        stop = observer.stop
    else:
        watched = _ours(folder, whole_reads=False, inotify=kind == "--watch (inotify)")

        def take() -> None:
            for path in watched:
                name = Path(path).name
                watched.done[name] = watched.taken.pop(name)
                if name.startswith("new-"):
                    got[name] = time.perf_counter()
                    arrived.set()

        threading.Thread(target=take, daemon=True).start()
        stop = watched.close
    time.sleep(2 * POLL_S)  # the watcher has taken its first looks (a benchmark may sleep; tests never do)
    delays = []
    photo = PHOTO.read_bytes()
    for index in range(LATENCY_FILES):
        name = f"new-{kind[:8].strip('- ')}-{index}.jpg".replace(" ", "_")
        arrived.clear()
        with open(folder / name, "wb") as handle:
            handle.write(photo)
        closed = time.perf_counter()
        if not arrived.wait(30):
            raise RuntimeError(f"{kind}: {name} not seen in 30 s")
        delays.append(got[name] - closed)
        time.sleep(0.37 * POLL_S)  # the next file lands at another moment of the poll cycle
    stop()
    for path in folder.glob("new-*"):
        path.unlink()
    return statistics.median(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--child", nargs=3, metavar=("WATCHER_INDEX", "FOLDER", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_idle(WATCHERS[int(args.child[0])], Path(args.child[1]), float(args.child[2]))
        return
    root = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    try:
        folders = {0: make_folder(root, 0), FILES: make_folder(root, FILES)}
        idle: dict[str, dict[str, list[float]]] = {str(n): {w: [] for w in WATCHERS} for n in folders}
        for round_index in range(args.rounds):
            order = WATCHERS[round_index % 3:] + WATCHERS[:round_index % 3]
            for files, folder in folders.items():
                for watcher in order:
                    idle[str(files)][watcher].append(idle_cpu(watcher, folder, IDLE_S[files]))
                    print(f"round {round_index + 1}, {files} files, {watcher}: "
                          f"{idle[str(files)][watcher][-1]:.3f} CPU s/min", flush=True)
        kinds = ("--watch (inotify)", "--watch, looks only", "watchdog PollingObserver")
        delays = {str(files): {kind: latency(kind, folder) for kind in kinds} for files, folder in folders.items()}
        print(delays, flush=True)
    finally:
        shutil.rmtree(root)
    results = {"cpu": cpu_model(), "files": FILES, "idle_s": {str(files): s for files, s in IDLE_S.items()},
               "poll_s": POLL_S,
               "full_look_s": watched_folder.FULL_LOOK_S, "rounds": args.rounds,
               "idle_cpu_s_per_min": {files: {watcher: round(statistics.median(values), 4)
                                              for watcher, values in by.items()} for files, by in idle.items()},
               "idle_rounds": idle,
               "latency_s": {files: {kind: round(value, 4) for kind, value in by.items()}
                             for files, by in delays.items()},
               "latency_files": LATENCY_FILES}
    write_json(Path(args.out), "watch.json", results)


if __name__ == "__main__":
    main()
