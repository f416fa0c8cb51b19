"""Security regressions: one module per class of hole, each test shown to fail before its fix."""
