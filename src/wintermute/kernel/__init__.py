"""The linux-wintermute kernel: its source, tree, configuration and build (invoke build-kernel)."""
