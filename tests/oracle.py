"""OpenCV 4.x's Darknet importer as an independent oracle (OpenCV 5 removed it).

OpenCV differs from darknet in a few places; comparisons here spell each one out:
- batch-norm epsilon: OpenCV uses 1e-6, darknet 1e-5 (src/blas.c) — `oracle_epsilon`
  gives our model OpenCV's value for a like-for-like comparison;
- cspx-p7-mish.cfg declares num=16 with 20 anchors, which OpenCV refuses: it gets a
  copy with num=20 (our engine reads the original).
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py

OPENCV_BN_EPSILON = 1e-6


def oracle_epsilon(model: darknet_py.Darknet, eps: float = OPENCV_BN_EPSILON) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = eps


def opencv_cfg(cfg: Path, tmp: Path) -> Path:
    """A copy OpenCV accepts: `num` set to the number of listed anchors in every [yolo]."""
    text = cfg.read_text()
    out, section = [], ""
    for line in text.splitlines():
        stripped = line.replace(" ", "")
        if stripped.startswith("["):
            section = stripped
        if section == "[yolo]" and stripped.startswith("num="):
            continue
        out.append(line)
        if section == "[yolo]" and stripped.startswith("anchors="):
            count = len([v for v in stripped.split("=", 1)[1].split(",") if v]) // 2
            out.append(f"num={count}")
    patched = tmp / cfg.name
    patched.write_text("\n".join(out) + "\n")
    return patched


def opencv_heads(cfg: Path, weights: Path, blob: np.ndarray, head_indices: list[int]) -> list[np.ndarray]:
    """The input of every [yolo] layer as OpenCV computes it."""
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    names = list(net.getLayerNames())
    # OpenCV names the yolo layer yolo_<i> and feeds it through permute_<i>; the layer
    # listed just before that permute produces the yolo input.
    outputs = [names[names.index(f"permute_{i}") - 1] for i in head_indices]
    net.setInput(blob)
    return [np.asarray(o) for o in net.forward(outputs)]


def relative_error(ours: torch.Tensor, ref: np.ndarray) -> float:
    ours_np = ours.detach().cpu().numpy()
    assert ours_np.shape == ref.shape, f"shape {ours_np.shape} vs OpenCV {ref.shape}"
    return float(np.abs(ours_np - ref).max() / np.abs(ref).max())


def num_mismatch(cfg: Path) -> bool:
    return bool(re.search(r"^\s*num\s*=\s*16", cfg.read_text(), re.M)) and cfg.name.startswith("cspx-p7")
