"""format/: the files darknet users hold, read and written exactly as darknet does: `.cfg` (cfg),
`.weights` (weights), `.names` (names), `.data` (darknet_data), class trees (softmax_tree), the
official model list and downloads (zoo), and darknet_py's own metadata in exported graphs (metadata).

May import: core.
"""
