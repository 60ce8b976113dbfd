"""Builds darknet_py's C extensions (the rest of the metadata is in setup.cfg): in darknet_py/pipeline, darknet's
resize (_darknet_resize.c), the CPU's [yolo] decoding of the candidates above the objectness threshold
(_yolo_gate.c) and greedy NMS of a few boxes (_greedy_nms.c); in darknet_py/model/layers, darknet's mish
activation in one pass (_mish.c); in darknet_py/model, darknet's k-means of box sizes for anchors (_kmeans.c).

All are optional: where they cannot be compiled the package installs without them and falls back to its
numpy/torch paths (tests/test_darknet_resize.py, tests/test_yolo_gate.py, tests/test_nms.py and
tests/test_mish_kernel.py and tests/test_anchors.py check both paths, and that the kernels were built where the tests run).
"""
import sys

from setuptools import Extension, setup

# Every product and sum rounded on its own, as darknet's C and torch's kernels round them: no fused
# multiply-adds, no fast-math reassociation.
EXACT_FLOATS = ["-O3", "-ffp-contract=off", "-fno-fast-math"]

setup(ext_modules=[
    Extension("darknet_py.pipeline._darknet_resize", ["darknet_py/pipeline/_darknet_resize.c"],
              extra_compile_args=EXACT_FLOATS, optional=True),
    *(Extension(f"darknet_py.pipeline.{name}", [f"darknet_py/pipeline/{name}.c"], extra_compile_args=EXACT_FLOATS,
                libraries=[] if sys.platform == "win32" else ["m"], optional=True)  # expf, powf
      for name in ("_yolo_gate", "_greedy_nms")),
    Extension("darknet_py.model.layers._mish", ["darknet_py/model/layers/_mish.c"], extra_compile_args=EXACT_FLOATS,
              optional=True),
    Extension("darknet_py.model._kmeans", ["darknet_py/model/_kmeans.c"], extra_compile_args=EXACT_FLOATS, optional=True),
])
