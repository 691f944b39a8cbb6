"""Entry point of the ``vgbench`` command: a thin group; errors become one line and exit code 2."""

from __future__ import annotations

import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU, spinning threads of several
# torch processes starve each other (measured here: a DPO step 41 s spinning vs 10-14 s passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from ..errors import VgbenchError
from .build_cmd import build_task_command
from .data_cmd import data_group
from .evaluate_cmd import evaluate_command
from .export_cmd import export_command
from .ground_truth_cmd import ground_truth_group
from .list_cmd import list_command
from .results_cmd import results_command
from .serve_cmd import serve_command
from .map_cmd import compare_command, map_command
from .report_cmd import report_command
from .plugin_cmd import new_plugin_command
from .validity_cmd import validity_command


class PluginCommandsGroup(click.Group):
    """The ``vgbench`` group: built-in commands, plus those plugins add through ``register_commands`` (asked
    for only when a name is not built in or the commands are listed, so built-ins start without them)."""

    _asked = None  # the plugin manager asked last (tests build a fresh one)

    def _ask_plugins(self) -> None:
        from ..plugins import get_plugin_manager, register_commands

        pm = get_plugin_manager()
        if self._asked is not pm:
            self._asked = pm
            register_commands(self)

    def get_command(self, ctx, cmd_name):
        """A built-in command, else one a plugin added."""
        if cmd_name not in self.commands:
            self._ask_plugins()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        """Every command, plugins' included."""
        self._ask_plugins()
        return super().list_commands(ctx)


@click.group(cls=PluginCommandsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vgbench")
def cli() -> None:
    """vgbench: which representation of values predicts alignment generalization?"""


cli.add_command(list_command)
cli.add_command(evaluate_command)
cli.add_command(results_command)
cli.add_command(build_task_command)
cli.add_command(data_group)
cli.add_command(serve_command)
cli.add_command(map_command)
cli.add_command(compare_command)
cli.add_command(report_command)
cli.add_command(new_plugin_command)
cli.add_command(validity_command)
cli.add_command(export_command)
cli.add_command(ground_truth_group)


NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def usage_error_line(exc: click.UsageError) -> str:
    """Click's usage error as one line: the message, then where the help for the failing command is."""
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if exc.ctx is not None else "vgbench"
    return f"{message} (see {command} --help)"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`VgbenchError` prints ``error: …`` on one line and exits 2."""
    try:
        cli.main(args=argv, prog_name="vgbench", standalone_mode=False)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except NO_ARGS_IS_HELP as exc:  # a bare group (`vgbench`, `vgbench data`): its help, as click prints it
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        print(f"error: {usage_error_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VgbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; finished results are kept", file=sys.stderr)
        sys.exit(130)
