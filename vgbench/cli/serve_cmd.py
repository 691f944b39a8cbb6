"""``vgbench serve``: an OpenAI-compatible chat-completions endpoint on 127.0.0.1 backed by a local model."""

from __future__ import annotations

import click

from ..errors import VgbenchError
from .common import model_option


@click.command("serve")
@model_option
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port.")
@click.option("--device", help="Torch device (default: cuda if available, else cpu).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for torch (default: torch's choice; 1 is "
                                                         "often fastest on a machine shared with other jobs).")
@click.option("--verbose", is_flag=True, help="Log every request.")
def serve_command(model: str, port: int, device: str | None, threads: int | None, verbose: bool) -> None:
    """Answer POST /v1/chat/completions on 127.0.0.1 with a local model (for openai:MODEL generators)."""
    from ..models.backend import get_backend
    from ..models.openai_server import make_server
    from ..models.subject import resolve_subject_model
    from ..store import vgbench_home
    from .display import progress

    if threads:
        import torch

        torch.set_num_threads(threads)
    subject = resolve_subject_model(model, vgbench_home() / "cache")
    progress(f"loading {subject.name}")
    backend = get_backend(subject.path, device, batch_size=1)
    try:
        server = make_server(backend, model, port, verbose=verbose)
    except OSError as exc:
        raise VgbenchError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); "
                           f"pass another --port, or 0 for any free one") from None
    print(f"serving {model!r} at {server.base_url} (OpenAI chat completions); "
          f"use: OPENAI_BASE_URL={server.base_url} vgbench data generate --generator openai:{model} ...", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
