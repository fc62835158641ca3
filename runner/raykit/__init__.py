"""raykit: version-matched Ray clusters on your own hosts, with saved benchmark reports."""

__version__ = "0.1.0"
