"""Every rendering target, in order: (output subdirectory, renderer)."""

from __future__ import annotations

from wintermute.packaging import arch, debian, dkms, system_files
from wintermute.packaging.render import Renderer

RENDERERS: list[tuple[str, Renderer]] = [
    ("system", system_files.render),
    ("dkms", dkms.render),
    ("debian", debian.render),
    ("arch", arch.render),
]
