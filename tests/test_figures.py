"""Every figure the README and the docs state is a value of the file named above it, so drift fails.

The rule, as a page writer meets it:

- **Marker.** A line `<!-- figures: FILE [FILE ...] -->` (paths from the repository root; `FILE#key.key`
  is the part of a JSON file under those keys, for files that also hold every trial) stands right
  above a block: the lines below it up to the next blank line (a paragraph, a list, or a table). A
  measured figure names a `benchmarks/results/` file (which a `python -m benchmarks.NAME` command
  writes, as the page says); a bound that a test asserts, or a constant of the code, names that test
  or module. `; not figures: N N ...` at the end of the marker lists numbers of the block that are
  settings rather than results (9 photos, 80 classes) and are in none of the files.
- **Which numbers.** Every number in the block's text, except inside fenced code, `code spans`, HTML
  comments, link targets and URLs, dates (2026-11-30), versions (2.13.0) and numbers that are part of a
  name (yolov4, fp16, P7, x86_64, b32, 80GB, mAP@0.50: a letter, digit, `_` or `.` touching either end,
  or `@` before it).
- **Match.** A number shown with d decimals matches a file value x when x, 100·x (a fraction, x < 10,
  shown as a percentage: 181% of a CPU's peak) or, for a number followed by "minute(s)"/"min", x/60 (seconds shown as
  minutes) rounds to it: |x − shown| ≤ half a unit of its last digit. `3.1e-5` matches at its own significant
  digits; `13,500` is 13500; signs are ignored. A JSON file's values are read recursively (numbers in
  its strings and keys as text, and each list's length: a count of its rows); any other file (.md,
  .txt, .py) is read as text.
- **Coverage.** On README.md and the pages listed in PAGES, a line of a table or paragraph that shows a
  measured-looking number (a decimal in a table; a number in scientific notation; a number followed
  by ×, %, ms, s, minutes, fps, frames/s, images/s, MB or KB) must sit in a marked block.

A block with a number its files do not hold fails with the page, line and number; so does a marker
naming a file that does not exist, and a marker with no block below it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
# the pages whose figures must be marked: README.md and every page of the site (a new page joins once its
# figures are marked; markers on any page are checked)
PAGES = ["README.md"] + [f"docs/{name}.md" for name in (
    "index", "getting-started", "cli", "python-api", "reference", "parity", "cfgs", "onnx-openvino", "gpu", "live",
    "ray", "classifiers", "performance", "failures", "architecture", "tiles", "datasets", "tracking", "cameras")]

MARKER = re.compile(r"^\s*<!--\s*figures:\s*(.*?)\s*-->\s*$")
CANDIDATE = re.compile(r"\d[\d,.]*(?:[eE][-+−]?\d+)?")
THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
PLAIN = re.compile(r"^\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?$")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
MINUTES = re.compile(r"^\s*(?:minutes?|min)\b")
# × right after a number and before no digit or letter is a ratio (0.89×); 3×3, K×7 and 1280×720 are sizes
MEASURED_UNIT = re.compile(r"^(?:×(?![\w])|\s*(?:%|ms\b|s\b|seconds?\b|minutes?\b|min\b|fps\b|frames/s\b|images/s\b|MB\b"
                           r"|KB\b))")


@dataclass(frozen=True)
class Shown:
    """A number as a page shows it."""

    text: str
    value: float
    decimals: int | None  # digits after the point; None for scientific notation
    significant: int  # mantissa digits after the point, for scientific notation
    minutes: bool
    measured_looking: bool
    start: int = 0  # offset in the text it was read from



def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group())  # keeps the line breaks, so line numbers stay right


def _strip(text: str) -> str:
    """The text a reader sees as prose: no fenced code, code spans (also across lines), link targets,
    URLs, comments or dates; every line where it was."""
    text = re.sub(r"^\s*```.*?^\s*```[^\n]*$", _blank, text, flags=re.M | re.S)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    text = re.sub(r"`[^`]*`", _blank, text)
    text = re.sub(r"\]\([^)]*\)", lambda m: "]" + _blank(m)[1:], text)
    text = re.sub(r"https?://\S+", _blank, text)
    return DATE.sub(_blank, text)


def numbers(text: str) -> list[Shown]:
    """The numbers of a piece of prose (already stripped), by the rule of the module docstring."""
    found = []
    for match in CANDIDATE.finditer(text):
        token, start = match.group(), match.start()
        token = token.rstrip(".,")  # sentence punctuation
        end = start + len(token)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if before.isalnum() or before in "_.@" or after.isalnum() or after == "_":
            continue  # part of a name: yolov4, fp16, x86_64, 80GB, 2³¹, mAP@0.50
        if token.count(".") > 1 or not (PLAIN.match(token) or THOUSANDS.match(token)):
            # a version (2.13.0) or a list written without spaces: its parts are checked one by one
            if token.count(".") > 1 and "," not in token:
                continue
            offset = start
            for part in token.split(","):
                found += [replace(n, start=offset + n.start - 1) for n in numbers(f" {part} ")]
                offset += len(part) + 1
            continue
        plain = token.replace(",", "").replace("−", "-")
        mantissa, _, exponent = plain.lower().partition("e")
        rest = text[end:]
        found.append(Shown(start=start,
            text=token, value=float(plain),
            decimals=None if exponent else (len(mantissa.split(".")[1]) if "." in mantissa else 0),
            significant=len(mantissa.split(".")[1]) if "." in mantissa else 0,
            minutes=bool(MINUTES.match(rest)),
            measured_looking=bool(exponent) or bool(MEASURED_UNIT.match(rest))))
    return found


def _json_values(node, out: list[float]) -> None:
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        out.append(float(node))
    elif isinstance(node, str):
        out.extend(n.value for n in numbers(f" {_strip(node)} "))
    elif isinstance(node, dict):
        for key, value in node.items():
            _json_values(key, out)
            _json_values(value, out)
    elif isinstance(node, list):
        out.append(float(len(node)))  # a count of rows: 87 cfgs, 50 trials
        for value in node:
            _json_values(value, out)


def _split(name: str) -> tuple[str, list[str]]:
    """`FILE#key.key` → (FILE, [key, key]): a part of a JSON file."""
    path, _, keys = name.partition("#")
    return path, [k for k in keys.split(".") if k]


def file_values(path: Path, keys: list[str] = ()) -> list[float]:
    """Every number a results file holds (JSON recursively, only under `keys` if given; anything else as text)."""
    if path.suffix == ".json":
        node = json.loads(path.read_text())
        for key in keys:
            node = node[key]
        out: list[float] = []
        _json_values(node, out)
        return out
    return [n.value for n in numbers(f" {DATE.sub(' ', path.read_text(errors='replace'))} ")]


def _exists(name: str, root: Path = REPO) -> bool:
    path, keys = _split(name)
    if not (root / path).is_file():
        return False
    try:
        file_values(root / path, keys)
    except (KeyError, TypeError, IndexError):
        return False
    return True


def matches(shown: Shown, value: float) -> bool:
    """Whether file value `value` is `shown` at the precision shown (module docstring)."""
    candidates = [abs(value)]
    # a fraction shown as a percentage (AP 25.3, 43.50 %; a share above one too: 181% of a CPU's peak)
    if abs(value) < 10 and shown.decimals is not None:
        candidates.append(abs(value) * 100)
    if shown.minutes:
        candidates.append(abs(value) / 60)
    target = abs(shown.value)
    for x in candidates:
        if shown.decimals is None:  # scientific: the same mantissa at the digits shown
            if x > 0 and f"{x:.{shown.significant}e}" == f"{target:.{shown.significant}e}":
                return True
        elif abs(x - target) <= 0.5 * 10 ** -shown.decimals * (1 + 1e-9) + 1e-12:
            return True
    return False


@dataclass
class Block:
    page: str
    line: int  # 1-based, the marker's line
    files: list[str]
    not_figures: set[float]
    lines: list[tuple[int, str]]  # (1-based line number, text)


def blocks(page: str, text: str) -> tuple[list[Block], list[str]]:
    """The marked blocks of a page, and what is wrong with its markers."""
    lines = text.splitlines()
    found, problems = [], []
    fenced = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        marker = MARKER.match(line)
        if fenced or not marker:
            continue
        spec, _, skip = marker.group(1).partition(";")
        files = spec.split()
        skip = skip.strip()
        if skip and not skip.startswith("not figures:"):
            problems.append(f"{page}:{index + 1}: after ';' a marker takes 'not figures: N ...', not {skip!r}")
        not_figures = {n.value for n in numbers(" " + skip.removeprefix("not figures:") + " ")}
        body = []
        for number in range(index + 1, len(lines)):
            if not lines[number].strip():
                break
            body.append((number + 1, lines[number]))
        if not files:
            problems.append(f"{page}:{index + 1}: a figures marker names no file")
        if not body:
            problems.append(f"{page}:{index + 1}: a figures marker with no block below it (a blank line follows)")
        problems += [f"{page}:{index + 1}: {name} does not exist" for name in files if not _exists(name)]
        found.append(Block(page, index + 1, files, not_figures, body))
    return found, problems


def drift(block: Block, root: Path = REPO) -> list[str]:
    """The numbers of a block that none of its files holds at the precision shown."""
    values = [v for name in block.files if _exists(name, root) for v in file_values(root / _split(name)[0], _split(name)[1])]
    wrong = []
    prose = _strip("\n".join(line for _, line in block.lines))
    for shown in numbers(prose):  # the whole block at once: "56\nminutes" is still minutes
        if shown.value in block.not_figures or any(matches(shown, v) for v in values):
            continue
        number = block.lines[prose.count("\n", 0, shown.start)][0]
        wrong.append(f"{block.page}:{number}: {shown.text} is in none of {', '.join(block.files)}")
    return wrong


def unmarked(page: str, text: str) -> list[str]:
    """Table rows and paragraphs with measured-looking numbers that no marker covers."""
    covered = {number for block in blocks(page, text)[0] for number, _ in block.lines}
    problems = []
    for index, (line, prose) in enumerate(zip(text.splitlines(), _strip(text).splitlines())):
        if index + 1 in covered:
            continue
        shown = numbers(f" {prose} ")
        table = line.lstrip().startswith("|")
        if any(n.measured_looking or (table and n.decimals) for n in shown):
            problems.append(f"{page}:{index + 1}: figures without a marker: {line.strip()[:100]}")
    return problems


def _pages() -> list[str]:
    return [p for p in PAGES if (REPO / p).is_file()]


def _all_marked_pages() -> list[str]:
    return sorted({*_pages(), *(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))})


def test_every_marker_names_an_existing_file_and_has_a_block():
    problems = [p for page in _all_marked_pages() for p in blocks(page, (REPO / page).read_text())[1]]
    assert not problems, "\n".join(problems)


def test_every_marked_figure_equals_its_files_value():
    wrong = [w for page in _all_marked_pages() for block in blocks(page, (REPO / page).read_text())[0]
             for w in drift(block)]
    assert not wrong, "figures that differ from their results files:\n" + "\n".join(wrong)


def test_every_page_marks_its_figures():
    problems = [p for page in _pages() for p in unmarked(page, (REPO / page).read_text())]
    assert not problems, "\n".join(problems)


def test_the_pages_have_markers():
    """The rule is in use: the pages that hold the measured tables name their files."""
    for page, results in (("docs/performance.md", "benchmarks/results/bench.md"),
                          ("docs/parity.md", "benchmarks/results/darknet_parity.json"),
                          ("docs/gpu.md", "benchmarks/results/gpu.json"),
                          ("README.md", "benchmarks/results/stress_suite.json")):
        named = {name for block in blocks(page, (REPO / page).read_text())[0] for name in block.files}
        assert results in named, (page, named)


# the checker itself, on a synthetic page and results file

PAGE = """# Speed

<!-- figures: results/run.json; not figures: 9 -->
| model | forward ms | AP |
|---|---|---|
| yolov4-tiny 416 | 22.22 | 25.3 |
| yolov4-csp 512 | 291.6 | 43.50 % |

<!-- figures: results/run.json -->
On the 9 photos: error 3e-6, 13,500 detections, in 55 minutes (`--batch 7`, torch 2.13.0, 2026-11-30).

Unmarked: 0.891× OpenCV's time.
"""


def _synthetic(tmp_path: Path, forward_ms: float) -> tuple[list[Block], Path]:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.json").write_text(json.dumps({
        "rows": [{"model": "yolov4-tiny", "size": 416, "forward_ms": forward_ms, "AP": 0.2528},
                 {"model": "yolov4-csp", "size": 512, "forward_ms": 291.63, "mAP": 0.435026}],
        "error": 2.86e-6, "detections": 13500, "seconds": 3310.8, "photos": "9 photos"}))
    return blocks("page.md", PAGE)[0], tmp_path


def test_the_checker_passes_a_page_that_equals_its_file(tmp_path: Path):
    found, root = _synthetic(tmp_path, 22.22)
    assert len(found) == 2
    assert [w for block in found for w in drift(block, root)] == []


def test_the_checker_reports_a_figure_that_drifted(tmp_path: Path):
    found, root = _synthetic(tmp_path, 22.31)  # the results file changed; the page did not
    assert [w for block in found for w in drift(block, root)] == ["page.md:6: 22.22 is in none of results/run.json"]


def test_the_checker_reads_precision_names_and_settings():
    shown = {n.text: n for n in numbers(f" {_strip(PAGE)} ")}
    assert "4" not in shown and "416" in shown and "2.13.0" not in shown and "7" not in shown  # names, versions, code
    assert "2026" not in shown and "30" not in shown  # the date
    assert shown["13,500"].value == 13500 and shown["55"].minutes and not shown["22.22"].minutes
    assert matches(shown["43.50"], 0.435026) and not matches(shown["43.50"], 0.4356)
    assert matches(shown["3e-6"], 2.86e-6) and not matches(shown["3e-6"], 3.6e-6)
    assert matches(shown["55"], 3310.8) and not matches(shown["22.22"], 22.226)
    assert unmarked("page.md", PAGE) == ["page.md:12: figures without a marker: Unmarked: 0.891× OpenCV's time."]


def test_a_changed_results_file_fails_the_page_that_states_it(tmp_path: Path):
    """The real performance page against a copy of its results where one median moved."""
    page = "docs/performance.md"
    found = blocks(page, (REPO / page).read_text())[0]
    for name in {_split(name)[0] for block in found for name in block.files}:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text())
    assert [w for block in found for w in drift(block, tmp_path)] == []
    bench = tmp_path / "benchmarks/results/bench.md"
    # OpenCV's yolov4-tiny forward, which the page's table shows: moved to a value no other figure has
    shown = re.search(r"\| yolov4-tiny 416 \(official\) \| opencv \| ([\d.]+) \|", bench.read_text()).group(1)
    assert bench.read_text().count(f"| {shown} |") == 1
    bench.write_text(bench.read_text().replace(f"| {shown} |", "| 987.65 |"))
    wrong = [w for block in found for w in drift(block, tmp_path)]
    assert len(wrong) == 1 and wrong[0].startswith(f"{page}:") and f"{shown} is in none of" in wrong[0]


def test_a_marker_without_a_file_or_block_is_reported():
    page = "<!-- figures: benchmarks/results/none.json -->\n\ntext 1.5 ms\n"
    problems = blocks("p.md", page)[1]
    assert any("does not exist" in p for p in problems) and any("no block below it" in p for p in problems)
