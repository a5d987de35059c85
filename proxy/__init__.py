"""signing-proxy: a signing reverse proxy between trading services and crypto venues."""

__version__ = "0.1.0"
