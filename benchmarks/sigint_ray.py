"""Fifty Ctrl-Cs at random moments of `darknet-py detect --ray`: each must stop the run, keep its work, resume.

One uninterrupted run of the COCO subset (158 images, yolov4-tiny, `--ray` with a private local
Ray, 2 workers, shards of 16) gives the reference `detections.jsonl` and the run's length T.
Then runs get SIGINT at a moment drawn uniformly from [0, T) after their start: half the signals go
to the driver alone (`kill -INT`), half to its whole process group, as a terminal's Ctrl-C sends
them. Every interrupted run must exit 130 (or 143, a stop signal's other code) within --limit-s
seconds, print no traceback, say how to resume once the run has started (see below) unless its whole
`detections.jsonl` was already written (the signal came during the report or the process's way
out), and leave no `detections.jsonl` but a whole one. Any other exit (a death by the signal itself,
returncode -2; a KeyboardInterrupt traceback, exit 1) is a failure, listed with the phase it hit.

Resumes are chained, as a user who keeps pressing Ctrl-C would: the next run is the same command
on the same output folder, itself interrupted at a random moment, until a run ends before its
moment comes. That run's `detections.jsonl` must equal the reference byte for byte, and no shard
finished before any of the chain's interruptions may have been rewritten since (content and
mtime); then a fresh folder starts the next chain. A fresh run that ends before its moment is not
counted (the moment is drawn again). This halves the machine time of a resume after each trial
and checks more: a folder resumed after several interruptions.

Where the signal landed is read from the run's events (darknet_py.core.events, DARKNET_PY_EVENTS
set to a file per run): "python start-up" (before the CLI's first event, `cli-starting`: the
interpreter and darknet_py.cli importing), "program start-up" (imports of the command, model load,
Ray starting), "shards" (after `ray-started`) or "after the merge" (`merged`). The resume hint is
owed once Ray has started, or once a fresh run has written run.json; a stop in the program's
start-up on a resumed folder ends with the start-up's one line. Every process a run started must be
gone afterwards (each run has a RAY_TMPDIR of its own, which its processes carry in their
environment; any left after a short grace are reported, then killed).

    python -m benchmarks.sigint_ray [--trials 50] [--seed 0] [--limit-s 10] [--out benchmarks/results]

Writes sigint_ray.json and sigint_ray.md. About 20-40 minutes for 50 trials on 2 cores.
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

from darknet_py.core.events import EVENTS
from darknet_py.core.fileio import atomic_write
from darknet_py.core.interrupt import STOP_EXIT_CODES
from darknet_py.core.machine import cpu_model
from darknet_py.distributed.shards import RESULT_FILE, RunFolder

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


def _env(ray_tmpdir: str, events: Path) -> dict:
    return {**os.environ, "RAY_TMPDIR": ray_tmpdir, EVENTS: str(events)}


def _events_file(log: Path) -> Path:
    return log.with_suffix(".events")


def _phase(events: Path) -> str:
    """How far the run got before it ended, from the events it reported (see the module docstring)."""
    names = {line.split()[0] for line in events.read_text().splitlines() if line.strip()} if events.exists() else set()
    if "merged" in names:
        return "after the merge"
    if "ray-started" in names:
        return "shards"
    if "cli-starting" in names:
        return "program start-up"
    return "python start-up"


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


def _run(output: Path, log: Path, at_s: float | None) -> tuple[subprocess.Popen, str, bool]:
    """Start the command (its own process group and RAY_TMPDIR); wait `at_s` seconds (None: to the end).
    (the process, its RAY_TMPDIR, whether it ended before `at_s`)."""
    ray_tmpdir = tempfile.mkdtemp(prefix="dpsig-", dir="/tmp")
    _events_file(log).write_text("")  # events are appended to an existing file only (core.events opens, never creates)
    with open(log, "w") as stderr:  # a file, not a pipe nobody reads until the end: it never fills up
        run = subprocess.Popen(_command(output), cwd=REPO, env=_env(ray_tmpdir, _events_file(log)),
                               stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        run.wait(at_s if at_s is not None else RESUME_LIMIT_S)
        return run, ray_tmpdir, True
    except subprocess.TimeoutExpired:
        if at_s is None:
            raise
        return run, ray_tmpdir, False


def _finish(ray_tmpdir: str) -> int:
    leftovers = _leftovers(ray_tmpdir)
    shutil.rmtree(ray_tmpdir, ignore_errors=True)
    return leftovers


def _interrupt(run: subprocess.Popen, to_group: bool) -> float:
    """SIGINT; seconds until the process ended (killed after HANG_S)."""
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
    return time.monotonic() - sent


class Chain:
    """Runs on one output folder until one completes; the trials (interruptions) it holds."""

    def __init__(self, work: Path, number: int) -> None:
        self.output = work / f"chain-{number}"
        self.number = number
        self.trials: list[dict] = []
        self.kept: dict[str, tuple[str, int]] = {}  # every shard finished before one of the interruptions

    def close(self, reference: bytes, completed: subprocess.Popen, log: Path) -> None:
        """The run that completed the chain: its result and the shards kept so far decide every trial of it."""
        identical = completed.returncode == 0 and (self.output / RESULT_FILE).read_bytes() == reference
        after = _shards(self.output)
        untouched = all(after.get(key) == value for key, value in self.kept.items())
        for trial in self.trials:
            trial.update(resume_identical=identical, kept_shards_untouched=untouched)
            trial["ok"] = trial["stopped_cleanly"] and identical and untouched
            if not (identical and untouched):
                trial.setdefault("problems", []).append("the resume differs from the uninterrupted run" if not identical
                                                        else "a finished shard was rewritten by a resume")
            if not identical:
                trial["resume_stderr_tail"] = log.read_text(errors="replace")[-2000:]
        shutil.rmtree(self.output, ignore_errors=True)


def _reference(work: Path) -> tuple[bytes, float]:
    start = time.monotonic()
    run, ray_tmpdir, _ = _run(work / "reference", work / "reference.stderr", None)
    seconds = time.monotonic() - start
    _finish(ray_tmpdir)
    if run.returncode != 0:
        sys.exit(f"the reference run failed (exit {run.returncode}):\n{(work / 'reference.stderr').read_text()[-3000:]}")
    return (work / "reference" / RESULT_FILE).read_bytes(), seconds


def _trials(work: Path, count: int, run_s: float, rng: random.Random, reference: bytes, limit_s: float
            ) -> tuple[list[dict], int]:
    trials: list[dict] = []
    redrawn = 0
    chain = Chain(work, 1)
    while len(trials) < count:
        at_s, to_group = rng.uniform(0, run_s), len(trials) % 2 == 1
        log = work / f"run-{len(trials) + 1}-{redrawn}.stderr"
        run, ray_tmpdir, ended = _run(chain.output, log, at_s)
        if not ended:
            shards_at_signal = len(RunFolder(chain.output).done())
            stop_s = _interrupt(run, to_group)
            ended = run.returncode == 0  # it finished as the signal was sent: it ended before its moment
        if ended:
            _finish(ray_tmpdir)
            if chain.trials:  # a resume that ran to the end: the chain is decided
                chain.close(reference, run, log)
                chain = Chain(work, chain.number + 1)
            else:  # a fresh run that was faster than its moment: not a trial
                redrawn += 1
                shutil.rmtree(chain.output, ignore_errors=True)
            continue
        err = log.read_text(errors="replace")
        fresh = not chain.trials  # the chain's first run starts on an empty folder: run.json is its own
        started = (chain.output / "run.json").exists()
        phase = _phase(_events_file(log))
        # a result file may only be the whole one: the signal came after the last shard, during the merge or later
        result = chain.output / RESULT_FILE
        result_whole = not result.exists() or result.read_bytes() == reference
        chain.kept.update({k: v for k, v in _shards(chain.output).items() if k not in chain.kept})
        trial = {"trial": len(trials) + 1, "chain": chain.number, "signal_at_s": round(at_s, 2),
                 "to": "process group" if to_group else "driver", "shards_at_signal": shards_at_signal,
                 "exit": run.returncode, "phase": phase, "stop_s": round(stop_s, 2), "run_started": started,
                 "hint": "to resume" in err, "result_file_whole_or_absent": result_whole,
                 "shards_kept": len(RunFolder(chain.output).done()), "leftover_processes": _finish(ray_tmpdir)}
        # the resume hint is owed when work remains and the run had begun: Ray up (its event), or run.json
        # written by this run; not in the program's start-up on a resumed folder (run.json is from before), and
        # not when the signal came after the whole result was written (during the report or the way out)
        complete = result.exists() and result_whole
        hint_owed = not complete and (phase in ("shards", "after the merge") or (fresh and started))
        trial.update(result_complete=complete, hint_owed=hint_owed, traceback="Traceback" in err)
        # only the program's own stop codes count: a death by the signal (-2) or a traceback (exit 1) is a failure
        problems = [why for why, bad in (
            (f"exit {run.returncode}, not 130/143", run.returncode not in STOP_EXIT_CODES),
            (f"stopped in {stop_s:.1f} s, over {limit_s:g} s", stop_s > limit_s),
            ("a traceback on stderr", trial["traceback"]),
            ("no resume hint", hint_owed and not trial["hint"]),
            ("a partial detections.jsonl", not result_whole),
            (f"{trial['leftover_processes']} process(es) left behind", trial["leftover_processes"] > 0)) if bad]
        trial["stopped_cleanly"] = not problems
        if problems:
            trial["problems"] = problems
            trial["stderr_tail"] = err[-2000:]
        trials.append(trial)
        chain.trials.append(trial)
        print(f"trial {trial['trial']:2d} (chain {chain.number}): SIGINT to the {trial['to']} at {at_s:5.1f} s "
              f"({phase}, {shards_at_signal} shards) → exit {run.returncode} in {stop_s:.1f} s, "
              f"{trial['shards_kept']} kept{'' if not problems else '  FAILED: ' + '; '.join(problems)}", flush=True)
    if chain.trials:  # the last chain: resume it to the end
        log = work / "last-resume.stderr"
        run, ray_tmpdir, _ = _run(chain.output, log, None)
        _finish(ray_tmpdir)
        chain.close(reference, run, log)
    return trials, redrawn


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
        started = time.monotonic()
        trials, redrawn = _trials(work, args.trials, run_s, rng, reference, args.limit_s)
    stops = [t["stop_s"] for t in trials]
    summary = {
        "trials": len(trials), "ok": sum(t["ok"] for t in trials), "exit_130": sum(t["exit"] == 130 for t in trials),
        "exit_130_or_143": sum(t["exit"] in STOP_EXIT_CODES for t in trials),
        "exits": {str(code): sum(t["exit"] == code for t in trials) for code in sorted({t["exit"] for t in trials})},
        "by_phase": {phase: sum(t["phase"] == phase for t in trials)
                     for phase in ("python start-up", "program start-up", "shards", "after the merge")},
        "stop_s_median": round(statistics.median(stops), 2), "stop_s_max": round(max(stops), 2),
        "resumes_identical": sum(t["resume_identical"] for t in trials),
        "kept_shards_untouched": sum(t["kept_shards_untouched"] for t in trials),
        "leftover_processes": sum(t["leftover_processes"] for t in trials),
        "signals_in_start_up": sum(t["shards_at_signal"] == 0 for t in trials),
        "chains": len({t["chain"] for t in trials}), "redrawn_finished_before_signal": redrawn,
        "limit_s": args.limit_s, "reference_run_s": round(run_s, 1),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "failures": [{"trial": t["trial"], "exit": t["exit"], "phase": t["phase"], "signal_at_s": t["signal_at_s"],
                      "problems": t.get("problems", [])} for t in trials if not t["ok"]],
    }
    result = {"what": "SIGINT at random moments of detect --ray (COCO subset, yolov4-tiny, 2 workers, shards of 16, "
                      "private local Ray); the next run resumes the same folder (chained) until one completes",
              "seed": args.seed,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cpu": cpu_model(),
              "summary": summary, "trials": trials}
    out = Path(args.out)
    with atomic_write(out / "sigint_ray.json", "w") as handle:
        json.dump(result, handle, indent=1)
    exits = ", ".join(f"{code}: {n}" for code, n in summary["exits"].items())
    lines = [f"{summary['ok']}/{summary['trials']} interrupted runs stopped cleanly (exit 130 or 143, no traceback, "
             f"resumed to the same result): exit 130 in {summary['exit_130']} (exit codes {exits}), "
             f"stop time median {summary['stop_s_median']} s, max {summary['stop_s_max']} s (limit {args.limit_s:g} s); "
             f"resumed ({summary['chains']} chains of resumes) identical to the uninterrupted run in "
             f"{summary['resumes_identical']}, finished shards untouched in {summary['kept_shards_untouched']}; "
             f"{summary['leftover_processes']} processes left behind; "
             f"{summary['signals_in_start_up']} signals came before the first shard (model load, Ray and actor start-up); "
             "by phase: " + ", ".join(f"{phase} {n}" for phase, n in summary["by_phase"].items()) + ".",
             f"Measured on {result['cpu']} ({result['machine']}), seed {args.seed}, {summary['minutes']} minutes.", ""]
    if summary["failures"]:
        lines += ["Failures:", ""] + [f"- trial {f['trial']} ({f['phase']}, signal at {f['signal_at_s']} s): "
                                      f"{'; '.join(f['problems'])}" for f in summary["failures"]] + [""]
    lines += ["| trial | chain | to | at (s) | phase | shards then | exit | stop (s) | kept | resume identical |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t['trial']} | {t['chain']} | {t['to']} | {t['signal_at_s']} | {t['phase']} | {t['shards_at_signal']} | "
              f"{t['exit']} | {t['stop_s']} | {t['shards_kept']} | {'yes' if t['resume_identical'] else 'NO'} |"
              for t in trials]
    with atomic_write(out / "sigint_ray.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(lines[0])
    sys.exit(0 if summary["ok"] == summary["trials"] else 1)


if __name__ == "__main__":
    main()
