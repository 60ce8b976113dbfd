"""The package version, in one place (setup.cfg reads it statically; exports record it)."""

__version__ = "0.4.0"
