"""Classification: one image's top classes, with names and probabilities (what classify() returns)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Classification:
    """One image's top classes, most probable first (what `classify()` returns per image).

    Attributes:
        class_ids (ndarray[top]): int64 class ids, most probable first.
        probabilities (ndarray[top]): float32, each class's probability (for a `[softmax]` with
            `tree=`, multiplied by its parent's, as `darknet classifier predict` does).
        names (list[str]): every class name, indexed by class id.
        source (str): the image's path ("" for an array).
    """

    class_ids: np.ndarray  # (top,) int64, most probable first
    probabilities: np.ndarray  # (top,) float32
    names: list[str] = field(repr=False)  # every class name, indexed by class id
    source: str = ""

    def __len__(self) -> int:
        return len(self.class_ids)

    @property
    def labels(self) -> list[str]:
        """The class names, most probable first."""
        return [self.names[i] for i in self.class_ids]

    def top(self) -> list[tuple[str, float]]:
        """(name, probability) pairs, most probable first."""
        return [(self.names[i], float(p)) for i, p in zip(self.class_ids, self.probabilities)]

    def as_dict(self) -> dict:
        """`{"source", "classes": [{"id", "name", "probability"}, …]}` (a `classifications.json` record)."""
        return {"source": self.source,
                "classes": [{"id": int(i), "name": self.names[i], "probability": float(p)}
                            for i, p in zip(self.class_ids, self.probabilities)]}

    def to_json(self) -> str:
        """`as_dict()` as one line of JSON."""
        return json.dumps(self.as_dict())

    def __str__(self) -> str:
        """darknet's `classifier predict` lines: "name: 0.123456"."""
        return "\n".join(f"{name}: {p:f}" for name, p in self.top())


def top_classes(probabilities: np.ndarray, top: int, names: list[str], source: str = "") -> Classification:
    """The `top` largest values, ties to the lower class id (darknet's top_k keeps the first it saw)."""
    top = max(0, min(top, probabilities.size))
    order = np.argsort(-probabilities, kind="stable")[:top]
    return Classification(order.astype(np.int64), probabilities[order].astype(np.float32), names, source)
