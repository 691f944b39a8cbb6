"""The built-in named subject models, each registered through ``register_models`` like a third party's model plugin."""
