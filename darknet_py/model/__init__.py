"""model/: the network as darknet builds it. `Network` (network.py: a torch module built from cfg
sections, with shapes, weights and recurrent state), its layers (layers/: one file per section
family, each registering its section types with a builder and a description), the layer table and
BFLOPs (info), CSP block structure (structure) and Scaled-YOLOv4 model scaling (scaling).

May import: format, core.
"""
