"""Jobs run as other processes, as a second terminal would: for tests of what runs at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def start_ingest(data_dir: Path, *inputs, stderr=subprocess.PIPE) -> subprocess.Popen:
    """`vidrec ingest INPUTS --json` with the tiny CLIP and one decoding thread, in another process (its
    stderr piped, or into the file given)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "ingest", *map(str, inputs)]
        + ["--clip", "tiny", "--workers", "1", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[dict, str]:
    """Its JSON report and its stderr, once it has ended well."""
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, (err or "")[-2000:]
    return json.loads(out), err or ""
