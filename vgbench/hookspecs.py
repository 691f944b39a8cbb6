"""The hooks a vgbench plugin can implement: the ``register_*`` hooks get a ``register`` callback (``register_commands``
the click group)."""

import pluggy

hookspec = pluggy.HookspecMarker("vgbench")
hookimpl = pluggy.HookimplMarker("vgbench")


@hookspec
def register_value_sets(register):
    """Register value sets: ``register(name, path_or_loader, description="")``."""


@hookspec
def register_tasks(register):
    """Register ground-truth tasks: ``register(TaskSubclass)``."""


@hookspec
def register_representations(register):
    """Register representations: ``register(RepresentationSubclass)``."""


@hookspec
def register_models(register):
    """Register named subject models (``--model NAME``): ``register(NamedModelSubclass)``."""


@hookspec
def register_environments(register):
    """Register environments (where a scenario's choice is made): ``register(name, path_or_loader)`` or ``(Environment)``."""


@hookspec
def register_commands(cli):
    """Add CLI commands: ``cli`` is the ``vgbench`` click group (``cli.add_command(...)``)."""
