"""Detections → darknet's per-frame JSON object, the one its `-json_port` stream and `-out result.json` carry.

darknet builds it in `detection_to_json` (src/network.c):
    {"frame_id": N, ["filename": "…",] "objects": [{"class_id", "name",
     "relative_coordinates": {"center_x", "center_y", "width", "height"}, "confidence"}, …]}
Coordinates are fractions of the image's width and height, printed with %f (6 decimals); an object is
listed per class above 0.005 (darknet's own floor there) unless its name starts with "dont_show".
The video demo numbers frames from 1.
"""
from __future__ import annotations

import json

from .detections import Detections

JSON_FLOOR = 0.005  # detection_to_json lists only prob > 0.005, whatever threshold came before
HIDDEN_PREFIX = "dont_show"


def darknet_frame(dets: Detections, frame_id: int, filename: str | None = None) -> dict:
    """darknet's JSON object for one frame (or one image, with its filename as `detector test -out` writes)."""
    width, height = dets.image_size
    frame: dict = {"frame_id": int(frame_id)}
    if filename is not None:
        frame["filename"] = filename
    objects = []
    for (x1, y1, x2, y2), score, class_id, name in zip(dets.boxes.tolist(), dets.scores.tolist(),
                                                      dets.class_ids.tolist(), dets.labels):
        if score <= JSON_FLOOR or name.startswith(HIDDEN_PREFIX):
            continue
        objects.append({
            "class_id": int(class_id),
            "name": name,
            "relative_coordinates": {
                "center_x": round((x1 + x2) / 2 / width, 6),
                "center_y": round((y1 + y2) / 2 / height, 6),
                "width": round((x2 - x1) / width, 6),
                "height": round((y2 - y1) / height, 6),
            },
            "confidence": round(score, 6),
        })
    frame["objects"] = objects
    return frame


def darknet_frame_json(dets: Detections, frame_id: int, filename: str | None = None) -> str:
    """darknet_frame as one line of JSON text."""
    return json.dumps(darknet_frame(dets, frame_id, filename))
