"""Built-in representations (installed as ``vgbench_representations``), each registered as a plugin."""
