"""Nothing unsafe is loaded or written: no pickle from untrusted files, downloads over https only
and inside the cache, one clear line (no traceback) for a user error unless --debug."""
from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import darknet_py
from darknet_py import cli
from darknet_py.format import zoo
from tests.conftest import ZOO_CFG, as_another_user, official


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle code ran')",))


def test_checkpoints_are_read_without_running_pickled_code(tmp_path: Path) -> None:
    from weights_tools.convert import pt_to_weights

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": 1, "payload": _Boom()}, protocol=2))
    cfg, _ = official("yolov4-tiny")
    with pytest.raises(darknet_py.WeightsError, match="not a readable darknet_py checkpoint"):
        pt_to_weights(str(cfg), str(evil), str(tmp_path / "out.weights"))
    assert not (tmp_path / "out.weights").exists()


def test_downloads_need_https_and_stay_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DARKNET_PY_ZOO", raising=False)
    plain = {"cfg": "http://example.com/m.cfg", "weights": "http://example.com/m.weights"}
    lookalike = {"cfg": "http://127.0.0.1.example.com/m.cfg", "weights": "http://127.0.0.1.example.com/m.weights"}
    monkeypatch.setattr(zoo, "manifest", lambda: {"models": {"m": plain, "n": lookalike, "../escape": plain,
                                                             ".hidden": plain}})
    for name in ("m", "n"):  # plain http only from this machine (the tests' server), not a host named like it
        with pytest.raises(darknet_py.InputError, match="non-https"):
            zoo.resolve(name)
    for name in ("../escape", ".hidden"):
        with pytest.raises(darknet_py.InputError, match="not a plain file name"):
            zoo.resolve(name)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    monkeypatch.setenv("DARKNET_PY_CACHE", "")  # set but empty: the default, not the working folder
    assert zoo.cache_dir() == Path.home() / ".cache" / "darknet_py"


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "missing.cfg")
    assert cli.main(["info", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read cfg file") and "Traceback" not in err and err.count("\n") == 1
    assert cli.main(["--debug", "info", missing]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_system_errors_and_bugs_are_one_line_too(tmp_path: Path, capsys, monkeypatch) -> None:
    cfg, weights = official("yolov4-tiny")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    # an output path that runs through a file: refused before the export's work, one line, exit 2
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(blocker / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1] == f"error: {blocker / 'm.onnx'}: {blocker} is a file, not a folder"
    # a name longer than a file name may be: the system's error when the file is written, one line naming it, exit 2
    too_long = tmp_path / ("m" * 300 + ".onnx")
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(too_long)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1] == f"error: {too_long}: File name too long"
    assert not list(tmp_path.glob("**/*.onnx*")) and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    # a bug deep inside: one line naming it, exit 3, the traceback only with --debug
    from darknet_py.model import info

    monkeypatch.setattr(info, "layer_rows", lambda model: 1 / 0)
    assert cli.main(["info", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected ZeroDivisionError" in err and "--debug" in err
    assert cli.main(["--debug", "info", str(cfg)]) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_atomic_writes_take_any_legal_name_and_their_errors_name_the_file(tmp_path: Path) -> None:
    """The temporary file beside the target adds a dot, 8 random characters and a suffix to the name: a legal
    254-byte name (125 two-byte letters) must still be writable, and a failure names the user's file, not ours."""
    from darknet_py.core.fileio import atomic_path, atomic_write

    long_name = tmp_path / ("é" * 125 + ".txt")
    with atomic_write(long_name, "w") as handle:
        handle.write("kept")
    image = tmp_path / ("a" * 250 + ".jpg")
    with atomic_path(image, ".jpg") as temporary:
        Path(temporary).write_bytes(b"jpeg")
    assert long_name.read_text() == "kept" and image.read_bytes() == b"jpeg"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long_name.name, image.name])  # no temporary left
    base = Path(tempfile.mkdtemp(prefix="darknet_py-readonly-"))  # tmp_path's parents are the test user's alone
    try:
        base.chmod(0o555)
        target = base / "result.json"
        code = f"from darknet_py.core.fileio import atomic_write\nwith atomic_write({str(target)!r}) as h: h.write(b'x')"
        result = subprocess.run(as_another_user([sys.executable, "-c", code]), capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == \
            f"PermissionError: [Errno 13] Permission denied: '{target}'", result.stderr
        assert list(base.iterdir()) == []
    finally:
        base.chmod(0o755)
        shutil.rmtree(base)


def test_a_full_disk_names_the_file_and_why(tmp_path: Path, monkeypatch, capsys) -> None:
    """A write that fails on a full disk (the kernel says so at a write, or at the fsync before the rename) is an
    OSError naming the user's file, and the command's `error:` line says both; an annotated image's too (OpenCV's
    imwrite said only that it failed): nothing half-written is left."""
    import errno
    import os

    import numpy as np

    from darknet_py import cli
    from darknet_py.core import fileio
    from darknet_py.core.fileio import atomic_write, write_image

    def full(*_args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_fdopen = os.fdopen

    class FullFile:  # a temporary file whose writes fail as a full disk's do
        def __init__(self, fd, mode):
            self.handle = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, _data):
            full()

    monkeypatch.setattr(fileio.os, "fdopen", FullFile)
    image = tmp_path / "bus.jpg"
    with pytest.raises(OSError) as failed:
        write_image(image, np.zeros((8, 8, 3), np.uint8))
    assert failed.value.filename == str(image) and failed.value.strerror == "No space left on device"
    monkeypatch.undo()
    target = tmp_path / "detections.json"
    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OSError) as failed:
        with atomic_write(target, "w") as handle:
            handle.write("[]")
    assert failed.value.filename == str(target) and failed.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # no temporary, no half file
    assert cli.main(["info", str(ZOO_CFG / "yolov4-tiny.cfg"), "--dot", str(tmp_path / "blocks.dot")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {tmp_path / 'blocks.dot'}: No space left on device"
