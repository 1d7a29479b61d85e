"""Maintainers' tools: the spec/implementation/test consistency check, the stub generator, calibration."""
