"""A folder watched for images (`darknet-py detect FOLDER --watch`): the images there now, then each one that arrives,
each taken only once it is whole — what a camera uploading snapshots over FTP, a scanner or another program drops into
a folder — until the run is stopped.

    folder = WatchedFolder("incoming/")
    folder.resume_from(Path("out"))          # an earlier run's out/watched.jsonl: the images it did are not done again
    for path in folder:                      # blocks until the next image is whole; Ctrl-C ends it
        ...
        folder.index.write(result)           # listed in out/watched.jsonl once its outputs are written

When is a file whole? A writer that closes it or renames it into the folder says so at once (inotify, through the
`watchdog` library, where the system has it); a file that nothing announces (one there when the run starts, one on a
network share, whose writes inotify does not see) is taken once two looks at it `poll_s` apart find the same size and
modification time. Either way a JPEG must end with its end-of-image marker and a PNG with its IEND chunk: an upload
that stalls half way is not read (OpenCV would decode the half and fill the rest with grey, without an error) until it
is finished, or has not changed for GIVE_UP_S, when it is detected as it is, with a warning.

An image is done again when its file changes (a camera that overwrites snapshot.jpg): the index keeps each name's size
and modification time.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..core import events
from ..core.dates import utc_text
from ..core.errors import DarknetWarning, InputError
from ..core.fileio import LinesFile
from ..pipeline.image_url import has_image_extension
from .sinks import Result

WATCHED_JSONL = "watched.jsonl"  # the images done, a line each: {"file", "size", "mtime_ns", "utc"}
POLL_S = 1.0  # seconds between two looks at the folder (--watch-poll)
GIVE_UP_S = 30.0  # a JPEG or PNG cut short and unchanged this long is detected as it is (a writer that died)
_PNG_END = b"\0\0\0\0IEND\xaeB`\x82"  # a PNG's last chunk: IEND, no data, its fixed CRC
CHANGED_S = 2.0  # after the folder's time changes, its list is read at every look this long (times of 1 s or 2 s)
FULL_LOOK_S = 30.0  # every file's state is read at least this often, whatever the folder's time says
_TAIL = 64  # bytes read from a file's end to find its end marker (cameras pad a JPEG with a few zeros)


@dataclass(frozen=True)
class FileState:
    """A file as a look at it found it: its size and modification time, which tell one version of it from the next."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileState | None:
        """*path*'s state now; None when it is gone (or not a file)."""
        try:
            stat = path.stat()
        except OSError:
            return None
        return cls(stat.st_size, stat.st_mtime_ns) if path.is_file() else None


@dataclass
class _Pending:
    """A file not yet taken: its state at the last look, since when it has been so (time.monotonic()), and whether the
    run has said it waits for its end."""

    state: FileState
    since: float
    told: bool = False


def looks_whole(path: Path) -> bool:
    """Whether an image file has its end: a JPEG its end-of-image marker (FF D9, trailing zero or whitespace bytes
    allowed), a PNG its IEND chunk (with its CRC); other formats have no end marker to look for (True).

    Args:
        path (Path): the file.

    Returns:
        bool: False for an empty file, or a JPEG or PNG whose end is missing (still being written, or cut short).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - _TAIL, 0))
            tail = handle.read()
    except OSError:
        return False
    if head.startswith(b"\xff\xd8"):
        return tail.rstrip(b"\x00 \t\r\n").endswith(b"\xff\xd9")
    if head.startswith(b"\x89PNG"):
        return tail.endswith(_PNG_END)
    return size > 0


class WatchedFolder:
    """The images of a folder, those there now (by name) and then those that arrive (in the order they become whole),
    each yielded once it is whole, for ever: iterating blocks until the next one (a stop, Ctrl-C or SIGTERM, or
    close() from another thread ends it). Only the folder itself is watched, unless *subfolders*.

    Args:
        folder (str or PathLike): the folder (it must exist).
        poll_s (float): seconds between two looks at the folder (a file nothing announces is taken at the second look
            that finds it unchanged).
        inotify (bool): take a file at once when inotify says it was closed or moved in (where the system and the
            `watchdog` library give it); False: by looking only (benchmarks.watch measures both).
        subfolders (bool): the folders in it too, and theirs, as they appear (a camera's FTP upload into a folder a
            day); an image is then named by its path from *folder* (`2026-12-07/0001.jpg`), and its outputs by that
            path with `_` for `/` (see `process`). Hidden folders (`.name`) and links to folders are not entered.

    Raises:
        InputError: *folder* is not a folder, or *poll_s* is not above 0.
    """

    def __init__(self, folder: str | os.PathLike[str], poll_s: float = POLL_S, inotify: bool = True,
                 subfolders: bool = False) -> None:
        self.folder = Path(folder)
        self.subfolders = subfolders
        if not self.folder.is_dir():
            raise InputError(f"--watch watches a folder for images; {folder} is not a folder")
        if not poll_s > 0:
            raise InputError(f"--watch-poll {poll_s}: give the seconds between two looks at the folder, above 0")
        self.poll_s = poll_s
        self.done: dict[str, FileState] = {}  # each image's version done (by this run or an earlier one)
        self.taken: dict[str, FileState] = {}  # the version yielded, until the index lists it
        self._seen: dict[str, _Pending] = {}  # the files not yet whole: the last look's state, since when
        self._told: dict[str, FileState] = {}  # the files announced whole (closed, or moved in) since the last look
        self._announced: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._closed = False
        self._observer = None
        self._inotify = inotify
        # each folder watched ("" the folder itself; with subfolders, each below it as its path from it): its
        # modification time at the last look, and when that last changed
        self._folders: dict[str, tuple[int | None, float]] = {"": (None, 0.0)}
        self._next_full_look = 0.0  # when to read every file's state at the latest
        self._looked_at = 0.0  # when the last look began
        self.index: WatchedIndex | None = None
        # each output stem given (the annotated image's, --save-txt's label's, --save-crops' crops' name) → the image
        # that has it: a second image that would take it (day1/a.jpg and day1_a.jpg, a.jpg and a.png) gets STEM-2
        self._output_stems: dict[str, str] = {}

    def resume_from(self, out: Path) -> None:
        """The run's folder *out* is known: its `watched.jsonl` (an earlier run's into the same folder) lists images done
        already, which are not done again unless they changed; the images done from now on are added to it."""
        with contextlib.suppress(FileNotFoundError), open(out / WATCHED_JSONL, encoding="utf-8") as lines:
            for line in lines:
                with contextlib.suppress(ValueError, KeyError, TypeError):  # a line a killed run left cut short
                    entry = json.loads(line)
                    self.done[entry["file"]] = FileState(int(entry["size"]), int(entry["mtime_ns"]))
                    output = entry.get("output") or self._plain_output(entry["file"])
                    self._output_stems.setdefault(os.path.splitext(output)[0], entry["file"])
        self.index = WatchedIndex(out / WATCHED_JSONL, self)

    def __iter__(self) -> Iterator[str]:
        self._start_observer()
        backlog = self._backlog()
        yield from backlog  # those there now, by name, as a folder run takes them
        idle, given = False, len(backlog)
        while not self._closed:
            ready = self._settled(self._announced_states(), announced=True)
            # a look when nothing was announced, and at least every poll_s while announced files keep coming (the
            # files nothing announces, and those announced before they were whole, are not held up by a busy folder)
            if not ready or time.monotonic() - self._looked_at >= self.poll_s:
                found = self._look()  # in the order they were written
                ready += self._settled(sorted(found.items(), key=lambda item: (item[1].mtime_ns, item[0])))
            for path in ready:
                idle, given = False, given + 1
                yield path
            if not ready:
                if not idle:  # for tests: the images this run has taken are done, and it waits for more
                    events.emit(f"watch-idle {given}")
                    idle = True
                with contextlib.suppress(queue.Empty):
                    name = self._announced.get(timeout=self.poll_s)
                    if name is not None:  # None: close() was called
                        self._told_whole(name)

    def _backlog(self) -> list[str]:
        """The images there when the run starts (by name), once two looks poll_s apart find them unchanged (those still
        changing then are taken later, as new ones are)."""
        first = sorted(self._look().items())
        if not first:
            return []
        self._settled(first)  # notes them: nothing announced them whole
        time.sleep(self.poll_s)
        now = self._look()
        return self._settled([(name, now[name]) for name, _ in first if name in now])

    def _look(self) -> dict[str, FileState]:
        """The image files in the folder now that this run has still to do (not done in the version on disk), by name,
        with their states. What is read depends on what may have changed, so that a big folder of images done costs
        little to watch (a stat per file: 0.7 s for 100,000 files on a 2-core AMD EPYC, benchmarks/results/watch.json):
        - every FULL_LOOK_S (and at the first look), every folder's list and every file's state: a file written again
          under its name, in place or renamed over the old one, is found by this where inotify cannot see it (a
          share); a folder so big that this takes long is read so less often (1% of the time at most);
        - the list of a folder whose own time changed (a file or folder added, removed or renamed into it), and for
          CHANGED_S after (file systems whose times are coarse), and the state of each name in it not done;
        - otherwise the state of the files seen but not yet whole."""
        now = self._looked_at = time.monotonic()
        if now >= self._next_full_look:
            self._note_folder("", self._folder_time(), now)
            found = self._read_folder("", every_state=True, now=now)
            self._next_full_look = time.monotonic() + max(FULL_LOOK_S, 100 * (time.monotonic() - now))
        else:
            found = {}
            for below in list(self._folders):
                if below not in self._folders:  # under a folder that this look found gone
                    continue
                folder_time = self._folder_time(below)
                if folder_time is None:  # a subfolder removed: what was in it is gone too
                    self._forget(below)
                    continue
                if now - self._note_folder(below, folder_time, now) < CHANGED_S:
                    found.update(self._read_folder(below, every_state=False, now=now))
        for name in list(self._seen):  # the files not yet whole, wherever they are
            if name not in found:
                state = FileState.of(self.folder / name)
                if state is None:  # gone before it was whole
                    del self._seen[name]
                else:
                    found[name] = state
        return {name: state for name, state in found.items() if self._pending(name, state)}

    def _read_folder(self, below: str, every_state: bool, now: float) -> dict[str, FileState]:
        """The image files in the folder *below* (a path from the watched folder, "" for itself) by name, with their
        states: one directory read, and a stat per file (*every_state*) or per file not done yet; with subfolders, the
        folders in it read the same way, those not known before noted as changed now.

        Raises:
            InputError: the watched folder itself cannot be read (removed, unmounted).
        """
        found: dict[str, FileState] = {}
        prefix = f"{below}/" if below else ""
        try:
            with os.scandir(self.folder / below) as entries:
                for entry in entries:
                    name = prefix + entry.name
                    if not every_state and (name in self.done or name in self.taken) and name not in self._seen:
                        continue  # done (or being done) in some version: not looked at
                    if entry.name.startswith("."):
                        continue
                    with contextlib.suppress(OSError):  # removed meanwhile
                        if self.subfolders and entry.is_dir(follow_symlinks=False):
                            if every_state or name not in self._folders:  # else its own time says when to read it
                                self._note_folder(name, entry.stat(follow_symlinks=False).st_mtime_ns, now)
                                found.update(self._read_folder(name, every_state, now))
                        elif has_image_extension(entry.name) and entry.is_file():
                            stat = entry.stat()
                            found[name] = FileState(stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            if not below:  # the folder itself removed or unmounted: the run cannot go on
                raise self._gone(exc) from None
            self._forget(below)
        return found

    def _folder_time(self, below: str = "") -> int | None:
        """The modification time of the folder *below* (a path from the watched folder); None when a subfolder is gone.

        Raises:
            InputError: the watched folder itself cannot be read (removed, unmounted): the run cannot go on.
        """
        try:
            return (self.folder / below).stat().st_mtime_ns
        except OSError as exc:
            if not below:
                raise self._gone(exc) from None
            return None

    def _gone(self, exc: OSError) -> InputError:
        """The run's error when the watched folder itself can no longer be read (*exc*: why)."""
        return InputError(f"--watch: cannot read the folder {self.folder} any more ({exc.strerror})")

    def images(self) -> list[str]:
        """The image files in the folder now, by the watch's own rules (the folders below with *subfolders*, no hidden
        names, no links to folders), their paths sorted: for the checks of the flags that write beside them before the
        run (--save-labels)."""
        return sorted(str(self.folder / name) for name in self._read_folder("", every_state=True, now=time.monotonic()))

    def _note_folder(self, below: str, folder_time: int | None, now: float) -> float:
        """Note the folder *below*'s modification time as a look found it; returns when it last changed (*now* for a
        folder new to this watch, or whose time is not the last look's)."""
        last = self._folders.get(below)
        if last is None or last[0] != folder_time:
            last = self._folders[below] = (folder_time, now)
        return last[1]

    def _forget(self, below: str) -> None:
        """The subfolder *below* is gone: it and the folders in it are no longer looked at."""
        for name in [name for name in self._folders if name == below or name.startswith(f"{below}/")]:
            del self._folders[name]

    def _pending(self, name: str, state: FileState) -> bool:
        """Whether *name* in *state* is still to do: neither done nor taken in that version."""
        return self.done.get(name) != state and self.taken.get(name) != state

    def _announced_states(self) -> list[tuple[str, FileState]]:
        """The files announced whole (closed after writing, or moved in) since the last call, in the order they were,
        with their states when they were."""
        with contextlib.suppress(queue.Empty):
            while (name := self._announced.get_nowait()) is not None:
                self._told_whole(name)
        told = [(name, state) for name, state in self._told.items() if self._pending(name, state)]
        self._told.clear()
        return told

    def _told_whole(self, name: str) -> None:
        """inotify announced *name* (its path from the watched folder) closed or moved in."""
        state = FileState.of(self.folder / name)
        hidden = any(part.startswith(".") for part in name.split("/"))
        if state is not None and has_image_extension(name) and not hidden:
            self._told.pop(name, None)  # to the end: the order they were announced in
            self._told[name] = state

    def name_of(self, path: str) -> str:
        """An image's name here: its path from the watched folder, with `/` (`2026-12-07/0001.jpg`; `x.jpg` in the
        folder itself)."""
        return Path(path).relative_to(self.folder).as_posix()

    def _settled(self, files: list[tuple[str, FileState]], announced: bool = False) -> list[str]:
        """The paths of *files* (name, state) that are whole now, marked taken: those *announced* whole at once, others
        once a look finds them as the last look did; a JPEG or PNG without its end only once it has it (or after
        GIVE_UP_S unchanged)."""
        now, ready = time.monotonic(), []
        for name, state in files:
            pending = self._seen.get(name)
            if pending is None or pending.state != state:
                pending = self._seen[name] = _Pending(state, now)
                if not announced:
                    continue
            path = self.folder / name
            if not looks_whole(path):
                if now - pending.since < GIVE_UP_S:
                    if not pending.told:  # for tests: the run has seen it, and waits for its end
                        events.emit(f"watch-not-whole {name}")
                        pending.told = True
                    continue
                warnings.warn(f"{path} has not changed for {GIVE_UP_S:g} s but its end is missing (cut short?): "
                              "detected as it is", DarknetWarning, stacklevel=2)
            if FileState.of(path) != state:  # written again since the look: the next look sees to it
                continue
            del self._seen[name]
            self.taken[name] = state
            ready.append(str(path))
        return ready

    def _start_observer(self) -> None:
        """inotify's word that a file was closed after writing or moved in (through watchdog), where the system has it;
        without it (another system, no watchdog, no inotify instances left) the looks alone find new files."""
        if not self._inotify:
            return
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        announced, root = self._announced, self.folder

        def announce(path: str) -> None:
            with contextlib.suppress(ValueError):  # moved out of the watched folder
                announced.put(Path(path).relative_to(root).as_posix())

        class Announcer(FileSystemEventHandler):
            def on_closed(self, event) -> None:
                announce(event.src_path)

            def on_moved(self, event) -> None:
                if not event.is_directory:  # a folder moved in: its folder's look lists it
                    announce(event.dest_path)

        try:
            observer = Observer()
            observer.schedule(Announcer(), str(self.folder), recursive=self.subfolders)
            observer.daemon = True
            observer.start()
        except OSError as exc:  # inotify's limits reached: looks only
            warnings.warn(f"--watch: no inotify for {self.folder} ({exc}); new files are found by looking every "
                          f"{self.poll_s:g} s", DarknetWarning, stacklevel=3)
            return
        self._observer = observer

    def process(self, result: Result) -> Result:
        """A Stage: the image's result dated by its file's modification time (when the camera or program wrote it),
        so that its records carry `utc`; one in a subfolder is named by its path from the watched folder with `_` for
        `/` (`2026-12-07_0001.jpg`: a folder a day holds the same names every day), which its outputs are named after
        (the annotated image, --save-txt's label, --save-crops' crops)."""
        name = self.name_of(result.source)
        state = self.taken.get(name)
        if state is not None:
            result.wall_time = state.mtime_ns / 1e9
        output = self.output_name(name)
        if output != Path(name).name:
            result.output_name = output
        return result

    @staticmethod
    def _plain_output(name: str) -> str:
        """An image's output name before any clash: its path from the folder with `_` for `/`."""
        return name.replace("/", "_")

    def output_name(self, name: str) -> str:
        """The name image *name* (its path from the folder) gives its outputs: its path with `_` for `/`, or where
        another image of this folder has that stem already (an earlier run's too), `STEM-2.EXT`, `STEM-3.EXT`, …, so
        that no image's annotated copy, label or crops replace another's (the same image written again keeps its
        name, and replaces its own)."""
        plain = self._plain_output(name)
        stem, suffix = os.path.splitext(plain)
        candidate, n = stem, 1
        while self._output_stems.setdefault(candidate, name) != name:
            n += 1
            candidate = f"{stem}-{n}"
        return candidate + suffix

    def finish(self) -> None:
        """The run has ended: stop watching (close())."""
        self.close()

    def close(self) -> None:
        """Stop watching: an iteration waiting for the next image (in another thread) ends, and inotify's thread
        stops."""
        self._closed = True
        self._announced.put(None)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


class WatchedIndex:
    """`watched.jsonl`, the sink that lists each image once every other output of it is written (the last sink): a
    line `{"file", "size", "mtime_ns", "utc"}` appended and flushed, so that a run again into the same folder does not
    do it again, whatever stopped the first (a kill included: an image not listed is done again). A file that could
    not be read (not an image, cut short for good) is listed too, with its `error`: tried again only once it changes.

    Args:
        path (Path): the file (an earlier run's is appended to).
        folder (WatchedFolder): the folder whose images it lists.
    """

    takes_unreadable = True  # media.sinks.ListsUnreadable

    def __init__(self, path: Path, folder: WatchedFolder) -> None:
        self.folder = folder
        self._lines = LinesFile(path, replace=False)

    def write(self, result: Result) -> None:
        name = self.folder.name_of(result.source)
        state = self.folder.taken.pop(name, None)
        if state is None:
            return
        self.folder.done[name] = state
        failed = {} if result.unreadable is None else {"error": result.unreadable}
        output = self.folder.output_name(name)  # kept by a run again into the folder: the name stays the image's
        renamed = {"output": output} if output != WatchedFolder._plain_output(name) else {}
        self._lines.append([json.dumps({"file": name, "size": state.size, "mtime_ns": state.mtime_ns,
                                        "utc": utc_text(state.mtime_ns / 1e9), **renamed, **failed})])

    def finish(self) -> None:
        self._lines.close()
