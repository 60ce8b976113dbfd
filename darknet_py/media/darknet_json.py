"""Detections → darknet's per-frame JSON object, the one its `-json_port` stream and `-out result.json` carry.

darknet builds it in `detection_to_json` (src/network.c), text for text:
    {"frame_id": N, ["filename": "…",] "objects": [{"class_id", "name",
     "relative_coordinates": {"center_x", "center_y", "width", "height"}, "confidence"}, …]}
Coordinates are fractions of the image's width and height of the unclipped box, printed with %f (6
decimals); every class of a box above 0.005 (darknet's own floor there) is listed unless its name starts
with "dont_show". Boxes come in the order darknet's NMS leaves them (Detections.nms_order_key: exact with the
detections' `class_scores`), each box's classes by class id. The video demo numbers frames from 1; `detector test
-out` from 1 per image too.
Tracked detections (`--track`) add `"track_id"` (an int, or null) to each object, after darknet's keys.
"""
from __future__ import annotations

import json

from ..pipeline.detections import Detections

JSON_FLOOR = 0.005  # detection_to_json lists only prob > 0.005, whatever threshold came before


def darknet_frame_text(dets: Detections, frame_id: int, filename: str | None = None) -> str:
    """darknet's JSON text for one frame (or one image, with its filename as `detector test -out` writes)."""
    w, h = dets.image_size
    head = f'{{\n "frame_id":{frame_id}, \n'
    if filename is not None:
        head += f' "filename":{json.dumps(filename)}, \n'
    objects = []
    boxes = sorted(dets.darknet_boxes(), key=lambda box: dets.nms_order_key(box[1]))  # stable, as darknet's qsort
    for (x1, y1, x2, y2), members in boxes:  # dont_show classes are already left out
        centre_x, centre_y, width, height = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        for i in sorted(members, key=lambda i: int(dets.class_ids[i])):
            if not float(dets.scores[i]) > JSON_FLOOR:
                continue
            track = "" if dets.track_ids is None else f', "track_id":{_track_text(int(dets.track_ids[i]))}'
            objects.append(f'  {{"class_id":{int(dets.class_ids[i])}, "name":{json.dumps(dets.labels[i])}, '
                           f'"relative_coordinates":{{"center_x":{centre_x:f}, "center_y":{centre_y:f}, '
                           f'"width":{width:f}, "height":{height:f}}}, "confidence":{float(dets.scores[i]):f}{track}}}')
    return head + ' "objects": [ \n' + ", \n".join(objects) + "\n ] \n}"


def _track_text(track_id: int) -> str:
    return str(track_id) if track_id >= 0 else "null"


def darknet_frame(dets: Detections, frame_id: int, filename: str | None = None) -> dict:
    """darknet_frame_text as a dict."""
    return json.loads(darknet_frame_text(dets, frame_id, filename))


def darknet_frame_json(dets: Detections, frame_id: int, filename: str | None = None) -> str:
    """darknet's object as one line of JSON text (a server-sent event's data)."""
    return json.dumps(darknet_frame(dets, frame_id, filename))


def darknet_json_file(records: list[str]) -> str:
    """darknet's result.json around its records (detector test -out)."""
    return "[\n" + ", \n".join(records) + "\n]"
