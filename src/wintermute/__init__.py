"""The linux-wintermute toolkit: builds memlog, its packages, and the VM that verifies them."""
