"""Head decoders, one module per head kind; darknet_py.decode picks one per head spec."""
