"""localflare: a local, stateful stand-in for the parts of Cloudflare's API that PRISM uses.

See localflare/README.md for what it serves and every known difference from the real API.
"""

__version__ = "0.1.0"
