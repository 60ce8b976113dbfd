"""pipeline/: pixels to results, whatever runs the network. Image reading and darknet's resize
(preprocess, darknet_resize, darknet_image), head decoding (decode, decoders/), NMS (nms), the
detect() and classify() pipelines around any `Backend` (backend.py holds the protocol), and the
result types (`Detections`, `Classification`); tracking and counting on Detections (tracking/).

May import: model, format, core.
"""
