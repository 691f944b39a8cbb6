"""Built-in ground-truth tasks (installed as ``vgbench_tasks``), each registered as a plugin."""
