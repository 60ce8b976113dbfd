"""distributed/: detection over large collections on Ray (ray_detect), with resumable, shard-by-shard
output (shards). Results leave through darknet_py.media.sinks, as the CLI's do.

May import: media, api's layers below (backends, pipeline, model, format, core). Ray is imported only when used.
"""
