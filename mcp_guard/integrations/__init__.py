"""Adapters from the ``mcp`` SDK's transports to the guard's one pipeline.

Importing this package registers the SDK server integration behind
``Guard.protect``, ``Guard.http_app`` and ``Guard.token_verifier`` (the core
never imports the adapters; they plug into it).
"""

from . import server as _server  # noqa: F401  (registers the SDK integration on import)
