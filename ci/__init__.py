"""The VM verification machinery: root filesystem image, accelerator, QEMU, ssh."""
