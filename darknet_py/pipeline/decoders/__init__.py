"""Head decoders, one module per head kind; darknet_py.pipeline.decode picks one per head spec."""
