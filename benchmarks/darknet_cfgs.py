"""Every cfg in darknet's own cfg/ folder against the real darknet, with the figures the test only
bounds: per cfg, what our forward_heads returns against darknet's forward pass (dump_layers; xnor
cfgs as `darknet detector test` runs them), same input, synthetic weights, 256 px (the cfg's own
size where [connected]/[local] fix it); or the one-line error of a cfg darknet_py refuses.

    python -m benchmarks.darknet_cfgs [NAME.cfg ...] [--out benchmarks/results/darknet_cfgs.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import darknet_py
from benchmarks.oracle.cfg_parity import compare_with_darknet
from benchmarks.oracle.darknet_reference import build_darknet
from darknet_py.core.fileio import atomic_write

REPO = Path(__file__).resolve().parents[1]


def check(name: str, darknet, folder: Path) -> dict:
    start = time.monotonic()
    try:
        errors = compare_with_darknet(darknet.folder / "cfg" / name, darknet, folder)
    except darknet_py.DarknetError as exc:
        return {"cfg": name, "refused": str(exc)}
    return {"cfg": name, "outputs": len(errors), "max_relative_error": max(errors), "errors": errors,
            "seconds": round(time.monotonic() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="cfg file names in darknet's cfg/ (default: all)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/darknet_cfgs.json"))
    args = parser.parse_args()
    darknet = build_darknet()
    names = args.names or sorted(p.name for p in (darknet.folder / "cfg").glob("*.cfg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = check(name, darknet, Path(tmp) / name)
            rows.append(row)
            shown = f"{row['max_relative_error']:.1e} over {row['outputs']} output(s), {row['seconds']} s" \
                if "refused" not in row else f"refused: {row['refused']}"
            print(f"{name:45s} {shown}", flush=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
