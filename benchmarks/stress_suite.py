"""The test suite on a busy machine: rounds of pytest while other processes keep every core busy.

    python -m benchmarks.stress_suite [--rounds 3] [--load N] [--quiet-round] [--out benchmarks/results]
                                      [--file stress_suite.json] [PYTEST ARGS...]
    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.stress_suite --rounds 0 --quiet-round --file suite_quiet.json \
        -n2 --dist=loadfile   # the quiet suite time, its tests run as tests/run.sh runs them

Each round runs `python -m pytest -q PYTEST ARGS` (the whole suite when none are given) while N
busy-loop processes (default: one per core) compete with it at the same priority; they start
before the round and stop after it. `--quiet-round` first runs one round without them, for the
comparison. Tests synchronise on events, never on time, so every round must pass, only slower.
Prints each round's time and result; writes the results file (--file) when the last round ends (each round's
pytest summary line and, for a failed round, the end of its output), and FILE.partial beside it as it starts
and after every round (`complete` says whether all planned rounds ran), so a run cut short keeps what it
finished; exits 0 only if every round passed.
Not part of CI: the whole suite three times under load takes about 2.5 hours on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
BUSY_LOOP = "while True: pass"


def _round(pytest_args: list[str], load: int, log: Path) -> dict:
    burners = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(load)]
    try:
        start = time.monotonic()
        with open(log, "w") as output:
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                                  cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        seconds = time.monotonic() - start
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    lines = log.read_text(errors="replace").splitlines()
    summary = next((line.strip("= ") for line in reversed(lines) if " in " in line and ("passed" in line or "failed" in line
                                                                                      or "error" in line)), "")
    result = {"load_processes": load, "seconds": round(seconds, 1), "passed": done.returncode == 0,
              "exit": done.returncode, "summary": summary}
    if done.returncode != 0:
        result["output_tail"] = "\n".join(lines[-60:])
    return result


def _commit() -> str:
    """The commit under test, "+changes" when the checkout differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _report(commit: str, pytest_args: list[str], rounds: list[dict], planned: int) -> dict:
    loaded = [r for r in rounds if r["load_processes"]]
    return {"commit": commit, "pytest_args": pytest_args or ["(whole suite)"], "cores": os.cpu_count(),
            "machine": cpu_model(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"), "rounds": rounds,
            "rounds_planned": planned, "complete": len(rounds) == planned,
            "all_passed": all(r["passed"] for r in rounds),
            "loaded_rounds_passed": f"{sum(r['passed'] for r in loaded)}/{len(loaded)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy-loop processes (default: one per core)")
    parser.add_argument("--quiet-round", action="store_true", help="first one round without the load, to compare")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--file", default="stress_suite.json",
                        help="the results file's name in --out (suite_quiet.json for the quiet-time figure)")
    args, pytest_args = parser.parse_known_args()
    plan = ([0] if args.quiet_round else []) + [args.load] * args.rounds
    commit = _commit()  # the code under test is the checkout as the run starts
    rounds: list[dict] = []

    final = Path(args.out) / args.file
    partial = final.with_name(final.name + ".partial")

    def save(path: Path) -> dict:
        report = _report(commit, pytest_args, rounds, planned=len(plan))
        with atomic_write(path, "w") as handle:
            json.dump(report, handle, indent=1)
        return report

    # Progress goes to FILE.partial, so a run cut short keeps the rounds it finished; FILE itself is replaced only
    # at the end: the suite under test checks the docs' figures against it (tests/test_figures.py), and a file
    # rewritten mid-run made that test fail in the very run measuring the suite.
    save(partial)
    with tempfile.TemporaryDirectory(prefix="dp-stress-") as logs:
        for index, load in enumerate(plan, 1):
            result = _round(pytest_args, load, Path(logs) / f"round-{index}.log")
            rounds.append(result)
            print(f"round {index} ({load} busy processes): {'PASSED' if result['passed'] else 'FAILED'} in "
                  f"{result['seconds'] / 60:.1f} min — {result['summary']}", flush=True)
            if not result["passed"]:
                print(result["output_tail"], flush=True)
            save(partial)
    report = save(final)
    partial.unlink()
    print(f"loaded rounds passed: {report['loaded_rounds_passed']}")
    sys.exit(0 if report["all_passed"] else 1)


if __name__ == "__main__":
    main()
