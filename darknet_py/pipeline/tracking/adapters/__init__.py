"""One module per tracker, each registering its class under its `--track` name (tracking.base.register):
importing this package imports every module in it, so adding a tracker is adding one file here."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
