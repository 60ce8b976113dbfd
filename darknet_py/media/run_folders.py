"""A run's output folder: a fresh runs/detect/N claimed atomically (or --output), the folders a run made and may
drop again when it wrote nothing, and which files in a folder a run wrote (for its last line's "→ folder").
The CLI's `detect` and `classify` use it; so can a script that writes a run's outputs as the CLI does
(`Outputs.sinks` into `run_folder(None)[0]`)."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from ..core.fileio import require_writable

DETECT_RUNS = Path("runs/detect")  # detect's default output: a fresh DETECT_RUNS/N each run (run_folder)


def run_folder(output: str | None, root: Path = DETECT_RUNS) -> tuple[Path, list[Path]]:
    """The run's output folder, made: `output` (--output) with any missing parents, or a fresh root/N claimed with
    one mkdir that fails when N exists, so that runs started together never share a folder (choosing N by looking
    first gave two runs the same one, each overwriting the other's files).

    Args:
        output (str or None): the --output folder, or None for a fresh numbered one.
        root (Path): where the numbered folders are (default runs/detect, relative to the working folder).

    Returns:
        tuple of (Path, list of Path): the folder, and the folders this call made, outermost first (for
        drop_empty).
    """
    if output:
        return Path(output), make_folders(Path(output))
    made = make_folders(root)
    n = 1
    while True:
        folder = root / str(n)
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        return folder, made + [folder]


def check_output_folder(output: str | None, exist_ok: bool = False, root: Path = DETECT_RUNS) -> None:
    """Refuse, before any work, an --output folder that holds files (a user's files are never replaced unasked:
    unless *exist_ok*), an --output that is a file, or a folder (--output, or *root* for a fresh numbered one) this
    user cannot write in.

    Raises:
        InputError: one line naming the folder and what to do.
    """
    if output and not exist_ok:
        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--output {folder} is a file, not a folder")
        held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if held:
            shown = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
            raise InputError(f"--output {folder} already holds {len(held)} file(s) ({shown}); pass --exist-ok to "
                             "write into it (files with the same names are replaced) or choose another folder")
    require_writable(output or root, "--output" if output else f"the run's folder {root}/N")


def make_folders(*folders: Path) -> list[Path]:
    """mkdir each of `folders` (parents too); returns those that did not exist before, outermost first, so that
    `drop_empty` can remove what a run made and left empty (`--no-save` with nothing else to write)."""
    made: list[Path] = []
    for folder in folders:
        missing, above = [], folder
        while not above.exists():
            missing.append(above)
            above = above.parent
        folder.mkdir(parents=True, exist_ok=True)
        made += [each for each in reversed(missing) if each not in made]
    return made


def drop_empty(made: list[Path]) -> None:
    """Remove the folders of `made` (from make_folders) that are still empty, innermost first."""
    for folder in reversed(made):
        try:
            folder.rmdir()  # only an empty folder goes
        except OSError:
            pass


def folder_files(folder: Path, made: list[Path]) -> dict[str, tuple[int, int]] | None:
    """What is in *folder* before a run writes there: each file → (inode, mtime in ns), so that `written_to` can
    tell the run's files (written atomically: a new inode) from those that were there; None for a folder the run
    made (`made`, from run_folder), where every file is the run's."""
    if folder in made:
        return None
    return {str(path): _identity(path) for path in folder.rglob("*") if path.is_file()}


def written_to(folder: Path, before: dict[str, tuple[int, int]] | None = None) -> str:
    """" → folder" for a run's last line, or nothing where the run wrote no file there.

    Args:
        folder (Path): the run's output folder.
        before (dict or None): `folder_files` from before the run (None: the run made the folder, so anything in it
            is its own).
    """
    if not folder.is_dir():
        return ""
    if before is None:
        return f" → {folder}"
    wrote = any(path.is_file() and before.get(str(path)) != _identity(path) for path in folder.rglob("*"))
    return f" → {folder}" if wrote else ""


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns
