"""A yes/no switch raised for the code run inside a `with` block, and only there.

It is a context variable: a thread (or asyncio task) that runs at the same time keeps its own value, so two
networks built or run side by side never see each other's switch. Used where a caller must change how the
layers below it behave without passing an argument through every layer (model.layers.registry's
`weights_follow`, model.layers.mish_kernel's `declined`).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator


class ScopedFlag:
    """False, except inside `with flag.raised():` in the same thread or task.

    Args:
        name (str): the context variable's name (shown in debuggers).
    """

    def __init__(self, name: str) -> None:
        self._value: ContextVar[bool] = ContextVar(name, default=False)

    def __bool__(self) -> bool:
        return self._value.get()

    @contextmanager
    def raised(self) -> Iterator[None]:
        """The flag is True inside the block, and back to what it was after it (nested blocks included)."""
        token = self._value.set(True)
        try:
            yield
        finally:
            self._value.reset(token)
