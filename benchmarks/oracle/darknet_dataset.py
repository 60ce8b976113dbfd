"""The shared COCO subset written out as a darknet-format dataset (for darknet's `detector map` and ours):
PNG copies of the images (darknet here decodes JPEG with stb_image, we with libjpeg-turbo: PNGs decode
alike), YOLO label files beside them, a valid list, names and an obj.data. Made in a temporary folder,
never committed."""
from __future__ import annotations

import json
from pathlib import Path

import cv2

from darknet_py.format.names import COCO_NAMES


def write_darknet_dataset(annotations: Path, images: Path, folder: Path, count: int | None = None,
                          difficult_every: int = 0, crowd: bool = False) -> Path:
    """obj.data for the first `count` images (by id) of a COCO annotation file; crowd boxes left out unless `crowd`.
    `difficult_every` > 0 moves every n-th box of an image into the labels of a difficult= list."""
    data = json.loads(annotations.read_text())
    categories = sorted(c["id"] for c in data["categories"])
    index = {c: i for i, c in enumerate(categories)}
    chosen = sorted(data["images"], key=lambda i: i["id"])[:count]
    boxes: dict[int, list] = {}
    for ann in data["annotations"]:
        if crowd or not ann.get("iscrowd", 0):
            boxes.setdefault(ann["image_id"], []).append(ann)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    paths, hard_paths = [], []
    for image in chosen:
        png = folder / "images" / (Path(image["file_name"]).stem + ".png")
        if not png.exists():
            cv2.imwrite(str(png), cv2.imread(str(images / image["file_name"])))
        w, h = image["width"], image["height"]
        lines = [f"{index[a['category_id']]} {(a['bbox'][0] + a['bbox'][2] / 2) / w:.6f} {(a['bbox'][1] + a['bbox'][3] / 2) / h:.6f} "
                 f"{a['bbox'][2] / w:.6f} {a['bbox'][3] / h:.6f}" for a in boxes.get(image["id"], [])]
        hard_lines = lines[::difficult_every] if difficult_every else []
        png.with_suffix(".txt").write_text("".join(line + "\n" for line in lines if line not in hard_lines))
        paths.append(str(png))
        if difficult_every:  # VOC's way: the difficult boxes leave the labels for a list of their own
            hard = folder / "difficult" / "JPEGImages" / png.name  # labels: difficult/labels/NAME.txt
            (folder / "difficult" / "labels").mkdir(parents=True, exist_ok=True)
            (folder / "difficult" / "labels" / png.with_suffix(".txt").name).write_text(
                "".join(line + "\n" for line in hard_lines))
            hard_paths.append(str(hard))
    (folder / "valid.txt").write_text("".join(p + "\n" for p in paths))
    (folder / "coco.names").write_text("".join(n + "\n" for n in COCO_NAMES))
    entries = [f"classes = {len(categories)}", f"valid = {folder / 'valid.txt'}", f"names = {folder / 'coco.names'}",
               "eval = coco", f"results = {folder}", f"backup = {folder}"]
    if difficult_every:
        (folder / "difficult.txt").write_text("".join(p + "\n" for p in hard_paths))
        entries.append(f"difficult = {folder / 'difficult.txt'}")
    (folder / "obj.data").write_text("\n".join(entries) + "\n")
    return folder / "obj.data"
