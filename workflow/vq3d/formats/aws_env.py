"""The files `vq3d serve-replica` hands to boto3 and the ego4d CLI: a throwaway AWS shared
credentials file and config file (INI, one profile), and `s3.env`, the shell lines that select
them and the local S3 endpoint (`source s3.env` in another shell)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..atomic import write_text

# Variables that would make boto3 use something other than the replica's profile.
CLEARED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE")


def write_aws_profile(aws_dir: str | os.PathLike, profile: str, key: str, secret: str,
                      region: str) -> tuple[Path, Path]:
    """`credentials` and `config` in aws_dir holding one profile; their absolute paths."""
    aws_dir = Path(aws_dir).resolve()  # the env file is sourced from anywhere
    aws_dir.mkdir(parents=True, exist_ok=True)
    write_text(aws_dir / "credentials", f"[{profile}]\naws_access_key_id = {key}\n"
                                        f"aws_secret_access_key = {secret}\n")
    section = "default" if profile == "default" else f"profile {profile}"
    write_text(aws_dir / "config", f"[{section}]\nregion = {region}\n")
    return aws_dir / "credentials", aws_dir / "config"


def env_lines(env: dict[str, str]) -> str:
    """Shell text: unset what would override the profile, export `env`."""
    lines = [f"unset {' '.join(CLEARED)}"] + [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def write_env_file(path: str | os.PathLike, env: dict[str, str]) -> str:
    text = env_lines(env)
    write_text(path, text)
    return text
