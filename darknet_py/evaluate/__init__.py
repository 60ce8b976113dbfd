"""evaluate/: how good a model is on a labelled dataset. COCO AP through pycocotools (coco) and
darknet's `detector map` line for line (darknet_map), sharing one detection pass (detection_pass).

May import: backends, pipeline, model, format, core.
"""
