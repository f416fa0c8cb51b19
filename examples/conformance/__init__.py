"""Helpers of ``examples/conformance_server.py``: the conformance fixtures and a resumable event store."""
