"""memlog as an upstream patch series: its form in a kernel tree, made, checked and applied."""
