"""The ``mcp-guard`` command line: one module per command group (see :mod:`.main`)."""
