"""Tools for darknet .weights files: synthesize, inspect, convert."""
