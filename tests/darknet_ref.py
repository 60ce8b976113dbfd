"""Literal numpy ports of darknet's C loops (src/*.c) for layers OpenCV 4.x cannot check.

Deliberately slow and index-by-index like the C code, so they share no structure with
the vectorised torch implementation they verify.
"""
from __future__ import annotations

import numpy as np

FLT_MAX = np.finfo(np.float32).max


def maxpool(x: np.ndarray, size: int, stride_x: int, stride_y: int, pad: int, avg: bool = False) -> np.ndarray:
    _, c, h, w = x.shape
    out_h, out_w = (h + pad - size) // stride_y + 1, (w + pad - size) // stride_x + 1
    out = np.zeros((1, c, out_h, out_w), np.float32)
    offset = -(pad // 2)
    for k in range(c):
        for i in range(out_h):
            for j in range(out_w):
                best, total, count = -FLT_MAX, 0.0, 0
                for n in range(size):
                    for m in range(size):
                        cur_h, cur_w = offset + i * stride_y + n, offset + j * stride_x + m
                        if 0 <= cur_h < h and 0 <= cur_w < w:
                            val = x[0, k, cur_h, cur_w]
                            best = max(best, val)
                            total += val
                            count += 1
                out[0, k, i, j] = total / count if avg else best
    return out


def maxpool_depth(x: np.ndarray, out_c: int) -> np.ndarray:
    _, c, h, w = x.shape
    out = np.full((1, out_c, h, w), -FLT_MAX, np.float32)
    for g in range(out_c):
        for k in range(g, c, out_c):
            out[0, g] = np.maximum(out[0, g], x[0, k])
    return out


def reorg(x: np.ndarray, w: int, h: int, c: int, stride: int) -> np.ndarray:
    """reorg_cpu(x, w, h, c, batch=1, stride, forward=0, out) on flat buffers."""
    flat, out = x.reshape(-1), np.zeros(x.size, np.float32)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * c2)
                out[in_index] = flat[out_index]
    return out


def downsample(x: np.ndarray, stride: int, scale: float) -> np.ndarray:
    _, c, h, w = x.shape
    out = np.zeros((1, c, h // stride, w // stride), np.float32)
    for k in range(c):
        for j in range(h // stride * stride):
            for i in range(w // stride * stride):
                out[0, k, j // stride, i // stride] += scale * x[0, k, j, i]
    return out


def dilated_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pad: int, dilation: int) -> np.ndarray:
    """im2col_cpu_ext with padding pad*dilation, stride 1, groups 1; output size as darknet computes."""
    _, c, h, w = x.shape
    n, _, size, _ = weight.shape
    p = pad * dilation
    padded = np.zeros((c, h + 2 * p, w + 2 * p), np.float32)
    padded[:, p : p + h, p : p + w] = x[0]
    out_h, out_w = h + 2 * pad - size + 1, w + 2 * pad - size + 1
    out = np.zeros((1, n, out_h, out_w), np.float32)
    for f in range(n):
        acc = np.zeros((out_h, out_w), np.float64)
        for ch in range(c):
            for ky in range(size):
                for kx in range(size):
                    oy, ox = ky * dilation, kx * dilation
                    acc += weight[f, ch, ky, kx] * padded[ch, oy : oy + out_h, ox : ox + out_w]
        out[0, f] = acc + bias[f]
    return out


def route(inputs: list[np.ndarray], groups: int, group_id: int) -> np.ndarray:
    parts = []
    for x in inputs:
        flat = x.reshape(-1)
        part = flat.size // groups
        parts.append(flat[part * group_id : part * (group_id + 1)])
    c = sum(x.shape[1] for x in inputs) // groups
    return np.concatenate(parts).reshape(1, c, *inputs[0].shape[2:])


ACTIVATIONS = {
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "hard_mish": lambda x: np.where(x > 0, x, np.where(x > -2, x * x / 2 + x, 0)),
    "elu": lambda x: (x >= 0) * x + (x < 0) * (np.exp(x) - 1),
    "selu": lambda x: (x >= 0) * 1.0507 * x + (x < 0) * 1.0507 * 1.6732 * (np.exp(x) - 1),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(0.797885 * x + 0.035677 * x**3)),
    "relie": lambda x: np.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: x * (x > 0) + 0.1 * x,
    "loggy": lambda x: 2 / (1 + np.exp(-x)) - 1,
    "plse": lambda x: np.where(x < -4, 0.01 * (x + 4), np.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5)),
    "hardtan": lambda x: np.clip(x, -1, 1),
    "lhtan": lambda x: np.where(x < 0, 0.001 * x, np.where(x > 1, 0.001 * (x - 1) + 1, x)),
    "stair": np.vectorize(lambda v: np.floor(v / 2) if int(np.floor(v)) % 2 == 0 else (v - np.floor(v)) + np.floor(v / 2)),
    "mish": lambda x: x * np.tanh(np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log1p(np.exp(x))))),
    "swish": lambda x: x / (1 + np.exp(-x)),
}
