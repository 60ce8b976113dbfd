"""Several detection calls at once, results in order: how a video file, a folder of images or `darknet-py map`
keeps every core busy when one call cannot.

On a small CPU one network run on all cores leaves them idle part of the time (the threads wait for each other at
every layer); two runs at once, each on its share of the cores, finish more frames per second — yolov4-tiny on a
2-core AMD EPYC: the default torch backend's video written 1.193× as fast, onnxruntime int8's network 87.44 runs/s
against 73.43 (benchmarks/results/in_flight.md). A backend offers such a twin
(`Backend.concurrent`); `media.run.plan_calls` picks it for a run, `in_order` drives it (this module
imports nothing of darknet_py: it only calls what it is given):

    detector, calls = plan_calls(model, "video", "clip.mp4", None)
    with in_order(lambda frame: detector.detect(frame), frames, calls) as done:
        for frame, detections in done:
            ...  # in the order of `frames`, at most `calls` detections running meanwhile

Each result still reaches the sinks in order from the caller's thread, so everything after detection (tracking,
the annotated video, the records) is as with one call at a time. What changes is latency: a frame takes longer
from read to result, which is why cameras and live streams keep one call at a time unless asked.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Done = TypeVar("Done")


@contextmanager
def in_order(work: Callable[[Item], Done], items: Iterable[Item], calls: int) -> Iterator[Iterator[tuple[Item, Done]]]:
    """`(item, work(item))` for each item, in the items' order, with up to *calls* calls of `work` running at once.

    With calls 1 everything runs in the caller's thread, one item at a time (no thread is started). Otherwise
    `work` runs on *calls* worker threads and must be safe to call from them at once; items are taken from
    *items* (in the caller's thread) only as calls finish: at most calls + 1 are taken ahead of the caller (one
    handled by it while *calls* run), so a video is never read further ahead than that.
    A failure in `work` is raised when its item's turn comes. However the block is left (the end, an error, a
    stop), items not yet started are dropped and the block waits for the running calls before it returns: the
    model is free again afterwards.

    Args:
        work (callable): item → result.
        items (iterable): taken lazily.
        calls (int): calls running at once, at most.

    Yields:
        iterator of (item, result) pairs.
    """
    if calls <= 1:
        yield ((item, work(item)) for item in items)
        return
    pool = ThreadPoolExecutor(calls, thread_name_prefix="darknet_py-detect")
    try:
        yield _ordered(pool, work, iter(items), calls)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ordered(pool: ThreadPoolExecutor, work: Callable, items: Iterator, calls: int) -> Iterator[tuple]:
    running: deque[tuple[object, Future]] = deque()
    for item in items:
        running.append((item, pool.submit(work, item)))
        # one more than `calls` taken: while the caller handles a result, `calls` others run (the pool holds
        # the extra one back until a worker is free)
        if len(running) > calls:
            item, future = running.popleft()
            yield item, future.result()
    while running:
        item, future = running.popleft()
        yield item, future.result()


def iter_batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """*items* in lists of *size* (the last one shorter), in order: the chunks that in_order's calls take.

    Args:
        items (iterable): anything, consumed once.
        size (int): items per list, at least 1.

    Yields:
        list: the next *size* items.
    """
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
