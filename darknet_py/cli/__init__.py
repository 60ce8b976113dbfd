"""`darknet-py` command line: one module per subcommand (add_arguments + run), registered in COMMANDS.
The CLI only parses, calls the library and formats; every error is one line and an exit code.

The command modules (and through them torch, OpenCV, ...) are imported only once the program has
taken charge of stop signals (run_program): a Ctrl-C at any moment of start-up is one line and exit
130, never a KeyboardInterrupt traceback from inside an import."""
from __future__ import annotations

from ..core import startup

if startup.started_as_program():  # first of all: a stop while the rest imports is one line, not a traceback
    startup.quit_during_startup()

import argparse  # noqa: E402 - after the stop handler, on purpose
import importlib
import os
import sys
import traceback
import warnings
from types import ModuleType

from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import DarknetError

COMMANDS: dict[str, str] = {  # name → help; the module darknet_py.cli.NAME has add_arguments(parser) and run(args)
    "detect": "detect objects in images, folders, videos, streams or a webcam",
    "classify": "top classes of images with a classifier cfg (darknet classifier predict)",
    "export": "convert a Darknet cfg + weights to ONNX or OpenVINO IR",
    "info": "layer table, BFLOPs and parameters of a cfg",
    "scale": "write a width/depth/size-scaled cfg (Scaled-YOLOv4 model scaling)",
    "map": "darknet's detector map on an obj.data dataset, or COCO mAP of an annotated folder",
    "server": "serve a model over HTTP: POST an image to /detect, get its detections as JSON",
    "slice": "cut a darknet training set into tiles, with their labels (small objects in large images)",
    "anchors": "anchors for a training set: darknet's detector calc_anchors (k-means of its label boxes)",
}


def command(name: str) -> ModuleType:
    """The module of command `name` (imported now: the commands' libraries are heavy)."""
    return importlib.import_module(f"{__name__}.{name}")


def _named_command(argv: list[str]) -> str | None:
    """The command that `argv` names: its first word that is not an option (the program's own
    options take no values), or None when there is none or it is not a command (argparse says so)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {hide_credentials(str(message))}\n"


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a wrong flag or value said as every user error is: one `error:` line (and where the options are
    listed), exit 2 — not the whole usage first (detect's is 40 lines), the error at its end."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (`{self.prog} --help` lists the options)\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="darknet-py", description="Darknet .cfg/.weights inference")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _named_command(sys.argv[1:] if argv is None else argv)
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        if name == chosen:  # only the command that runs is imported: `darknet-py --help` loads no torch
            command(name).add_arguments(command_parser)
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    with interrupt.stop_on_signals():  # SIGINT and SIGTERM: Interrupted, exit 130 / 143
        try:
            code = _run(args)
        except KeyboardInterrupt:  # Interrupted too: a stop that landed outside _run's own handlers (as it returned,
            code = interrupt.exit_code()  # or while one said an error): the stop's exit code, not a traceback
        # a stop that came too late to cut the work short still says so (the work is whole)
        return interrupt.exit_code() if interrupt.received() and code == 0 else code


def run_program() -> None:
    """The `darknet-py` program (and `python -m darknet_py.cli`): main(), then exit with its code.

    After a stop signal the outputs are complete (written atomically, Ray shut down), and the
    interpreter's own teardown of torch and Ray can take seconds on a busy machine: the user asked
    to stop, so it is skipped. Until main() takes charge of stop signals, a stop ends the start-up
    with one line (nothing has been written yet)."""
    startup.quit_during_startup()
    events.emit("cli-starting")
    quiet_opencv_logs(sys.argv[1:])
    code = main()
    if code in interrupt.STOP_EXIT_CODES:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def quiet_opencv_logs(argv: list[str]) -> None:
    """OpenCV's own log and its FFmpeg's off for the program, before cv2 is imported (unless --debug, or the user set
    them): a camera that is not there printed a dozen lines of its backends' tries before the error, a damaged video
    FFmpeg's complaint for each frame. The program says what went wrong in one line (media.video_source.cannot_open, with
    FFmpeg's reason) and counts the frames it skipped."""
    if "--debug" not in argv:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def _run(args) -> int:
    try:
        return command(args.command).run(args)
    except DarknetError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {hide_credentials(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return interrupt.exit_code()
    except BrokenPipeError:  # `darknet-py info … | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # disk full, permissions, a path through a file: the system's words, one line
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {hide_credentials(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if args.debug:
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {hide_credentials(str(exc).splitlines()[0]) if str(exc) else ''} — "
              "a darknet_py bug; rerun with --debug and report the traceback", file=sys.stderr)
        return 3
