"""`python -m darknet_py.cli`: the same as the `darknet-py` command."""
from . import run_program

run_program()
