"""The ``vgbench`` command line: one module per verb family."""
