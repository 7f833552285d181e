"""Packaging: render templates/ from kernel.yaml, build packages with the distributions' tools."""
