"""Bad cfg text raises DarknetError and nothing else: a short hypothesis campaign over mutated
shared cfgs (the long one is benchmarks/fuzz_campaign.py), plus the cases fuzzing found."""
from __future__ import annotations

import contextlib
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import darknet_py
from benchmarks.oracle.cfg_fuzz import Case, run_case
from darknet_py.backends.torch import Darknet
from darknet_py.format.cfg import parse_text
from tests.conftest import ZOO_CFG, shared_path, zoo_cfgs

SMALL = ["yolov4-tiny", "yolov3-tiny", "yolov4-tiny-3l", "yolov7-tiny"]
TEXTS = {p.stem: p.read_text() for p in zoo_cfgs()}
# not a speed check: a case this slow means something loops or allocates absurdly. Counted in CPU seconds
# of this process (all its threads), not wall time: other processes on a busy machine do not count.
HANG_LIMIT_S = 30


class CaseHung(Exception):
    """A fuzz case used HANG_LIMIT_S of CPU time: raised inside it, so the campaign cannot stall."""


@contextlib.contextmanager
def cpu_time_limit(seconds: float):
    """Raise CaseHung inside the block once this process has spent `seconds` of CPU time in it (ITIMER_PROF:
    CPU time of all its threads, so a busy machine does not trip it; the signal lands between Python
    bytecodes, and pytest's own timeout bounds the whole test if a single C call never returns)."""
    def expire(signum, frame):
        raise CaseHung(f"a fuzz case used more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


@pytest.mark.timeout(900)
@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(base=st.sampled_from(SMALL * 4 + sorted(TEXTS)), seed=st.integers(0, 2 ** 30),
       mutations=st.integers(1, 6), size=st.sampled_from([32, 64, 96, 128]))
def test_mutated_cfgs_raise_only_darknet_errors(base: str, seed: int, mutations: int, size: int) -> None:
    with cpu_time_limit(HANG_LIMIT_S):  # a hang is a failure of this case, not a stalled suite
        outcome = run_case(Case(TEXTS[base], seed, mutations, size))  # any other exception fails the test
    assert outcome in ("built", "ran") or outcome.startswith("refused: ")


def test_a_case_that_spins_is_stopped_by_the_cpu_time_limit() -> None:
    started = time.process_time()
    with pytest.raises(CaseHung), cpu_time_limit(0.3):
        while True:
            pass
    assert time.process_time() - started < 5


def _tiny_with(old: str, new: str) -> str:
    text = shared_path(ZOO_CFG / "yolov4-tiny.cfg").read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("old, new, message", [
    # found by fuzzing: a huge num made the default mask list before the mask= line was read
    ("num=6", "num=99999999999999999999", "out of range"),
    # found by fuzzing: a 1,000,000-wide max window padded the input to terabytes before failing
    ("size=2\nstride=2", "size=1000000\nstride=2", "beyond any real network"),
    ("width=416", "width=-2", "network width must be 1..16384"),
    ("filters=255", "filters=2147483648", "out of range"),
])
def test_absurd_values_are_refused_before_allocating(old: str, new: str, message: str) -> None:
    with pytest.raises(darknet_py.DarknetError, match=message):
        Darknet(parse_text(_tiny_with(old, new), "tiny.cfg"))


def test_an_upsample_that_would_exhaust_memory_is_refused() -> None:
    text = _tiny_with("[upsample]\nstride=2", "[upsample]\nstride=30000")
    with pytest.raises(darknet_py.CfgError, match=r"layer 33.*beyond any real network"):
        Darknet(parse_text(text, "tiny.cfg"), size=416)
