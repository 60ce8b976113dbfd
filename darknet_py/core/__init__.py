"""core/: what every role uses and nothing of darknet_py's: errors and warnings, atomic files,
stop signals (interrupt), progress lines, test synchronisation events, credentials hidden in URLs
(credentials), the version.

May import: nothing of darknet_py.
"""
