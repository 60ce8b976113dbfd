"""export/: the network as a file other runtimes read: ONNX (onnx), OpenVINO IR (openvino), int8
quantisation calibrated on real images (quantize). The metadata they write is darknet_py.format.metadata.

May import: backends, pipeline, model, format, core.
"""
