"""Fifty Ctrl-Cs at random moments of `darknet-py detect --ray`: each must stop the run, keep its work, resume.

One uninterrupted run of the COCO subset (158 images, yolov4-tiny, `--ray` with a private local
Ray, 2 workers, shards of 16) gives the reference `detections.jsonl` and the run's length T. Then,
trial after trial, a fresh run gets SIGINT at a moment drawn uniformly from [0, T) after its
start: half the trials to the driver alone (`kill -INT`), half to its whole process group, as a
terminal's Ctrl-C sends it. A run that ends before its moment is not counted and the moment is
drawn again. Each interrupted run must exit 130 within --limit-s seconds, with the resume hint
once the run has started (run.json written), and leave no `detections.jsonl` but a whole one; then the same
command is run again to the end and must give the reference byte for byte, without rewriting any
shard the interrupted run had finished. A signal during Python's own start-up (importing torch,
before the CLI has installed its handlers) ends the process as Python ends an uncaught
KeyboardInterrupt, killed by SIGINT: a shell reports 130 all the same; the trial records the raw
return code too. Every process a trial started must be gone afterwards (each run has a RAY_TMPDIR
of its own, which its processes carry in their environment; any left are reported, then killed).

    python -m benchmarks.sigint_ray [--trials 50] [--seed 0] [--limit-s 10] [--out benchmarks/results]

Writes sigint_ray.json and sigint_ray.md. About an hour on 2 busy cores (a trial is one
interrupted run plus its resume).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from darknet_py.fileio import atomic_write
from darknet_py.shards import RESULT_FILE, RunFolder

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO_IMAGES = SHARED / "data" / "coco-val2017-subset" / "images"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
SHARD = 16
HANG_S = 120  # a run that has not ended this long after the signal is killed and counted as a failure
RESUME_LIMIT_S = 900
LINGER_S = 15


def _command(output: Path) -> list[str]:
    return [sys.executable, "-m", "darknet_py.cli", "detect", str(COCO_IMAGES), "--cfg", str(CFG), "--weights",
            str(WEIGHTS), "--ray", "--workers", "2", "--no-save", "--shard-size", str(SHARD), "--output", str(output)]


def _env(ray_tmpdir: str) -> dict:
    return {**os.environ, "RAY_TMPDIR": ray_tmpdir}


def _shards(output: Path) -> dict[str, tuple[str, int]]:
    folder = RunFolder(output)
    return {key: (hashlib.sha256(folder.shard_path(key).read_bytes()).hexdigest(), folder.shard_path(key).stat().st_mtime_ns)
            for key in folder.done()}


def _processes_with(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _leftovers(ray_tmpdir: str) -> int:
    """Processes of this trial still alive LINGER_S after it ended (then killed): should be none. Ray's
    workers take a moment to notice that their raylet is gone, hence the grace."""
    marker = f"RAY_TMPDIR={ray_tmpdir}".encode()
    end = time.monotonic() + LINGER_S
    while (pids := _processes_with(marker)) and time.monotonic() < end:
        time.sleep(0.5)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


def _reference(work: Path) -> tuple[bytes, float]:
    ray_tmpdir = tempfile.mkdtemp(prefix="dpsig-", dir="/tmp")
    start = time.monotonic()
    done = subprocess.run(_command(work / "reference"), cwd=REPO, env=_env(ray_tmpdir), capture_output=True, text=True,
                          timeout=RESUME_LIMIT_S)
    seconds = time.monotonic() - start
    _leftovers(ray_tmpdir)
    shutil.rmtree(ray_tmpdir, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"the reference run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return (work / "reference" / RESULT_FILE).read_bytes(), seconds


def _trial(work: Path, index: int, at_s: float, to_group: bool, reference: bytes, limit_s: float) -> dict | None:
    """One interrupted run and its resume; None when the run ended before its moment came."""
    output = work / f"trial-{index}"
    shutil.rmtree(output, ignore_errors=True)
    ray_tmpdir = tempfile.mkdtemp(prefix="dpsig-", dir="/tmp")
    try:
        log = work / f"trial-{index}.stderr"  # a file, not a pipe nobody reads until the end: it never fills up
        with open(log, "w") as stderr:
            run = subprocess.Popen(_command(output), cwd=REPO, env=_env(ray_tmpdir), stdout=subprocess.DEVNULL,
                                   stderr=stderr, start_new_session=True)
        try:
            run.wait(at_s)
            return None  # finished before the signal: draw again
        except subprocess.TimeoutExpired:
            pass
        shards_at_signal = len(RunFolder(output).done())
        sent = time.monotonic()
        if to_group:
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGINT)
        try:
            run.wait(HANG_S)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        stop_s = time.monotonic() - sent
        err = log.read_text(errors="replace")
        # a signal during Python's own start-up (importing torch, before the CLI runs) ends the process the
        # way Python ends an uncaught KeyboardInterrupt: killed by SIGINT, which a shell reports as 130 too
        status = 128 + signal.SIGINT if run.returncode == -signal.SIGINT else run.returncode
        kept = _shards(output)
        leftovers = _leftovers(ray_tmpdir)
        # a result file may only be the whole one: the signal came after the last shard, during the merge or later
        result_whole = not (output / RESULT_FILE).exists() or (output / RESULT_FILE).read_bytes() == reference
        resumed = subprocess.run(_command(output), cwd=REPO, env=_env(ray_tmpdir), capture_output=True, text=True,
                                 timeout=RESUME_LIMIT_S)
        after = _shards(output)
        identical = resumed.returncode == 0 and (output / RESULT_FILE).read_bytes() == reference
        leftovers += _leftovers(ray_tmpdir)
        trial = {"trial": index, "signal_at_s": round(at_s, 2), "to": "process group" if to_group else "driver",
                 "shards_at_signal": shards_at_signal, "exit": status, "returncode": run.returncode,
                 "stop_s": round(stop_s, 2), "run_started": (output / "run.json").exists(),
                 "hint": "rerun the same command to resume" in err, "result_file_whole_or_absent": result_whole,
                 "shards_kept": len(kept), "kept_shards_untouched": all(after.get(k) == v for k, v in kept.items()),
                 "resume_exit": resumed.returncode, "resume_identical": identical, "leftover_processes": leftovers}
        trial["ok"] = (status == 130 and stop_s <= limit_s and (trial["hint"] or not trial["run_started"])
                       and result_whole
                       and trial["kept_shards_untouched"] and identical and leftovers == 0)
        if not trial["ok"]:
            trial["stderr_tail"] = err[-2000:]
            trial["resume_stderr_tail"] = resumed.stderr[-2000:]
        return trial
    finally:
        shutil.rmtree(ray_tmpdir, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-s", type=float, default=10.0, help="an interrupted run must end within this")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="dpsig-work-") as folder:
        work = Path(folder)
        reference, run_s = _reference(work)
        print(f"reference run: {run_s:.1f} s, {len(reference.splitlines())} records", flush=True)
        trials: list[dict] = []
        redrawn = 0
        started = time.monotonic()
        while len(trials) < args.trials:
            trial = _trial(work, len(trials) + 1, rng.uniform(0, run_s), len(trials) % 2 == 1, reference, args.limit_s)
            if trial is None:
                redrawn += 1
                continue
            trials.append(trial)
            print(f"trial {trial['trial']:2d}: SIGINT to the {trial['to']} at {trial['signal_at_s']:5.1f} s "
                  f"({trial['shards_at_signal']} shards) → exit {trial['exit']} in {trial['stop_s']:.1f} s, "
                  f"{trial['shards_kept']} kept; resume {'identical' if trial['resume_identical'] else 'DIFFERENT'}"
                  f"{'' if trial['ok'] else '  FAILED'}", flush=True)
    stops = [t["stop_s"] for t in trials]
    summary = {
        "trials": len(trials), "ok": sum(t["ok"] for t in trials), "exit_130": sum(t["exit"] == 130 for t in trials),
        "stop_s_median": round(statistics.median(stops), 2), "stop_s_max": round(max(stops), 2),
        "resumes_identical": sum(t["resume_identical"] for t in trials),
        "kept_shards_untouched": sum(t["kept_shards_untouched"] for t in trials),
        "leftover_processes": sum(t["leftover_processes"] for t in trials),
        "signals_in_start_up": sum(t["shards_at_signal"] == 0 for t in trials),
        "redrawn_finished_before_signal": redrawn, "limit_s": args.limit_s, "reference_run_s": round(run_s, 1),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    result = {"what": "SIGINT at random moments of detect --ray (COCO subset, yolov4-tiny, 2 workers, shards of 16, "
                      "private local Ray), then a resume", "seed": args.seed,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "summary": summary, "trials": trials}
    out = Path(args.out)
    with atomic_write(out / "sigint_ray.json", "w") as handle:
        json.dump(result, handle, indent=1)
    lines = [f"{summary['ok']}/{summary['trials']} interrupted runs stopped cleanly: exit 130 in {summary['exit_130']}, "
             f"stop time median {summary['stop_s_median']} s, max {summary['stop_s_max']} s (limit {args.limit_s:g} s); "
             f"resume identical to the uninterrupted run in {summary['resumes_identical']}, finished shards untouched in "
             f"{summary['kept_shards_untouched']}; {summary['leftover_processes']} processes left behind; "
             f"{summary['signals_in_start_up']} signals came before the first shard (model load, Ray and actor start-up).",
             "", "| trial | to | at (s) | shards then | exit | stop (s) | kept | resume identical |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t['trial']} | {t['to']} | {t['signal_at_s']} | {t['shards_at_signal']} | {t['exit']} | {t['stop_s']} | "
              f"{t['shards_kept']} | {'yes' if t['resume_identical'] else 'NO'} |" for t in trials]
    with atomic_write(out / "sigint_ray.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(lines[0])
    sys.exit(0 if summary["ok"] == summary["trials"] else 1)


if __name__ == "__main__":
    main()
