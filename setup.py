"""Builds darknet_py's one C extension, darknet's resize kernel (the rest of the metadata is in setup.cfg).

The extension is optional: where it cannot be compiled the package installs without it and darknet_resize
falls back to its numpy/torch path, which gives the same floats more slowly (tests/test_darknet_resize.py
checks both against darknet, and that the kernel was built where the tests run).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "darknet_py.pipeline._darknet_resize",
    ["darknet_py/pipeline/_darknet_resize.c"],
    # darknet rounds every product and sum on its own: no fused multiply-adds, no fast-math reassociation
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"],
    optional=True,
)])
