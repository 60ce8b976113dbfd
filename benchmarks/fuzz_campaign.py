"""Long cfg fuzzing campaign: N mutated shared cfgs (benchmarks/oracle/cfg_fuzz.py), each parsed, built and,
when small enough, run; every outcome must be a DarknetError or success. Worker processes run the
cases; a case that does not finish in --timeout seconds counts as a hang. Failures are written
with the case that reproduces them.

    python -m benchmarks.fuzz_campaign [--cases 100000] [--workers 2] [--seed 0] [--timeout 60]
        [--out benchmarks/results/fuzz_campaign.json]
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import random
import time
import traceback
from pathlib import Path

from benchmarks.oracle.cfg_fuzz import Case, run_case
from darknet_py.core.fileio import atomic_write

REPO = Path(__file__).resolve().parents[1]
CFGS = REPO.parent / "shared" / "zoo" / "cfg"
SMALL = ("yolov4-tiny", "yolov3-tiny", "yolov4-tiny-3l", "yolov7-tiny")
_TEXTS: dict[str, str] = {}


def _init() -> None:
    _TEXTS.update({p.stem: p.read_text() for p in sorted(CFGS.glob("*.cfg"))})


def _run(spec: tuple[str, int, int, int]) -> tuple[tuple, str]:
    name, seed, mutations, size = spec
    try:
        return spec, run_case(Case(_TEXTS[name], seed, mutations, size))
    except Exception as exc:  # noqa: BLE001 — exactly what the campaign looks for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return spec, f"BUG {type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(exc)[:200]}"


def cases(count: int, seed: int) -> list[tuple[str, int, int, int]]:
    names = sorted(p.stem for p in CFGS.glob("*.cfg"))
    if not names:
        raise SystemExit(f"no cfgs in {CFGS}")
    rng = random.Random(seed)
    return [(rng.choice(SMALL) if rng.random() < 0.8 else rng.choice(names), rng.randrange(1 << 30),
             rng.randint(1, 6), rng.choice([32, 64, 96, 128])) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fuzz_campaign.json"))
    args = parser.parse_args()
    todo = cases(args.cases, args.seed)
    outcomes: collections.Counter[str] = collections.Counter()
    bugs: dict[str, dict] = {}
    start = time.monotonic()
    with multiprocessing.Pool(args.workers, initializer=_init) as pool:
        pending = [pool.apply_async(_run, (spec,)) for spec in todo]
        for done, (spec, job) in enumerate(zip(todo, pending), 1):
            try:
                _, outcome = job.get(timeout=args.timeout)
            except multiprocessing.TimeoutError:
                outcome = "BUG hang"
            kind = outcome.split(":")[0] if not outcome.startswith("BUG") else "bug"
            outcomes[kind] += 1
            if outcome.startswith("BUG"):
                bugs.setdefault(outcome, {"count": 0, "case": dict(zip(("cfg", "seed", "mutations", "size"), spec))})
                bugs[outcome]["count"] += 1
            if done % 2000 == 0 or done == len(todo):
                rate = done / (time.monotonic() - start)
                print(f"{done}/{len(todo)} cases, {rate:.0f}/s, outcomes {dict(outcomes)}", flush=True)
    report = {"cases": len(todo), "seed": args.seed, "seconds": round(time.monotonic() - start),
              "outcomes": dict(outcomes), "bugs": bugs}
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    print(json.dumps(report, indent=1))
    raise SystemExit(1 if bugs else 0)


if __name__ == "__main__":
    main()
