"""Publish the built site: commit it to a branch (gh-pages by default) of a git repository, URL or path."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from vgbench.errors import VgbenchError

AUTHOR = {"GIT_AUTHOR_NAME": "vgbench leaderboard", "GIT_AUTHOR_EMAIL": "vgbench@localhost",
          "GIT_COMMITTER_NAME": "vgbench leaderboard", "GIT_COMMITTER_EMAIL": "vgbench@localhost"}


def _git(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
    except FileNotFoundError:
        raise VgbenchError("git is not installed; install it to publish the leaderboard") from None


def _reason(proc: subprocess.CompletedProcess) -> str:
    """git's first fatal/error line (the later ones are generic advice), else its last line."""
    lines = [x.strip() for x in (proc.stderr or proc.stdout).splitlines() if x.strip()]
    first = next((x.split(":", 1)[1].strip() for x in lines if x.startswith(("fatal:", "error:"))), None)
    return first or (lines[-1] if lines else f"exit code {proc.returncode}")


def publish_site(site_dir: Path, target: str, branch: str = "gh-pages", message: str | None = None) -> str:
    """Commit ``site_dir``'s files as the whole content of ``branch`` in ``target`` and push; returns the commit."""
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise VgbenchError(f"{site_dir}: no index.html; build the site first with `vgbench leaderboard build`")
    if "://" not in target and not target.startswith("git@"):
        target = str(Path(target).expanduser().resolve())
    heads = _git("ls-remote", "--heads", target, branch)
    if heads.returncode != 0:
        raise VgbenchError(f"--to {target}: not a git repository ({_reason(heads)}); "
                           "create one with `git init --bare PATH` or pass a repository URL")
    # a throwaway repository: the user's own checkout is never touched, the target changes by one push
    with tempfile.TemporaryDirectory(prefix="vgbench-publish-") as tmp:
        work = Path(tmp)
        _checked(_git("init", "-q", cwd=work), target)
        if heads.stdout.strip():
            _checked(_git("fetch", "-q", "--depth", "1", target, branch, cwd=work), target)
            _checked(_git("checkout", "-q", "-b", branch, "FETCH_HEAD", cwd=work), target)
            _checked(_git("rm", "-rq", "--ignore-unmatch", ".", cwd=work), target)
        else:
            _checked(_git("checkout", "-q", "--orphan", branch, cwd=work), target)
        for item in site_dir.iterdir():
            dest = work / item.name
            if item.is_dir():
                shutil.copytree(item, dest)
            else:
                shutil.copy2(item, dest)
        (work / ".nojekyll").touch()
        _checked(_git("add", "-A", cwd=work), target)
        if heads.stdout.strip() and not _git("status", "--porcelain", cwd=work).stdout.strip():
            return heads.stdout.split()[0]
        identity = {} if _git("config", "user.email", cwd=work).stdout.strip() else AUTHOR
        _checked(_git("commit", "-q", "-m", message or "Update the vgbench leaderboard", cwd=work, env=identity), target)
        _checked(_git("push", "-q", target, f"HEAD:refs/heads/{branch}", cwd=work), target)
        return _git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _checked(proc: subprocess.CompletedProcess, target: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        raise VgbenchError(f"--to {target}: git failed: {_reason(proc)}")
    return proc
