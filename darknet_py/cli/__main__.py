"""`python -m darknet_py.cli`: the same as the `darknet-py` command."""
import sys

from . import main

sys.exit(main())
