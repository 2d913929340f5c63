"""Running the installed `obsbundle` console script as a user would."""

from __future__ import annotations

import os
import subprocess

from obsbundle.services.process import which


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `obsbundle` console script and capture its output."""
    return subprocess.run(
        [which("obsbundle"), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
