"""`vidrec serve [--port P] [--sandbox]`: the Streamlit web UI on 127.0.0.1, headless, for one data directory.

The data directory reaches the app through VIDREC_DATA_DIR (as the CLI reads it), `--sandbox` through
VIDREC_SANDBOX=1. Streamlit runs as a child process (it wants the main thread and its own event loop):
`app/ui/server.py`, which loads the catalog's API object (model, indexes, CLIP) into the app's cache before
Streamlit's server starts in that same process. This process prints the address once the server answers its
health check, so the first visitor does not wait for the loading. Ctrl+C or SIGTERM stops both. The address
and streamlit's messages go to stderr, like every command's logs.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from app.common import SANDBOX_VARIABLE, EngineOption, Failure, data_dir, run
from app.ui.uploads import UPLOAD_LIMIT_MB
from ingest.engine import RAY_TEMP_VARIABLE, check_engine, ray_temp_dir
from ingest.store import DataDir

MAIN = Path(__file__).resolve().parent / "ui" / "main.py"
HOST = "127.0.0.1"
DEFAULT_PORT = 8501
SANDBOX_HELP = (
    "Keep every visitor's likes, skips and impressions in their browser session; write nothing to the catalog "
    "(for demos)"
)


def streamlit_command(port: int) -> list[str]:
    """Safe defaults: loopback only, XSRF protection and CORS checks on, an upload limit, no usage
    statistics sent anywhere, no file watcher, no toolbar options for visitors. `app.ui.server` takes
    `streamlit run`'s arguments: it loads the catalog, then hands them to Streamlit's own command line."""
    return [
        sys.executable,
        "-m",
        "app.ui.server",
        "run",
        str(MAIN),
        "--server.address",
        HOST,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--server.enableCORS",
        "true",
        "--server.maxUploadSize",
        str(UPLOAD_LIMIT_MB),
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--browser.serverAddress",
        HOST,
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",
        "type",
        "--theme.base",
        "light",
        "--theme.primaryColor",
        "#e4572e",
    ]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def app_environment(folder: Path, engine: str = "local", sandbox: bool = False) -> dict[str, str]:
    """The app's environment: this one, with the data directory, the engine and the sandbox switch (only
    `--sandbox` turns it on; one inherited from the shell is dropped)."""
    env = dict(
        os.environ, VIDREC_DATA_DIR=str(folder), VIDREC_ENGINE=engine, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false"
    )
    env.pop(SANDBOX_VARIABLE, None)
    if sandbox:
        env[SANDBOX_VARIABLE] = "1"
    return env


def serve(
    data_dir: Path | str,
    port: int = DEFAULT_PORT,
    open_message: bool = True,
    engine: str = "local",
    sandbox: bool = False,
) -> int:
    """Run the UI until interrupted; returns streamlit's exit status. `vidrec demo` ends with this. The
    address is printed once the app has loaded the catalog and its server answers. `engine` "ray": sharded
    indexes are searched through Ray actors; the app connects to RAY_ADDRESS, else starts a local cluster whose
    temp dir this process makes and removes after the app, however the app ends. `sandbox`: the app writes
    nothing to the catalog (VIDREC_SANDBOX=1)."""
    folder = DataDir(data_dir).root
    if not DataDir(folder).database.is_file():
        raise Failure(f"no catalog in {folder} (run `vidrec demo` or `vidrec ingest` first)")
    if not port_free(port):
        raise Failure(f"port {port} on {HOST} is in use: choose another with --port")
    check_engine(engine)
    env = app_environment(folder, engine, sandbox)
    with ray_temp_dir() if engine == "ray" else contextlib.nullcontext() as temp:
        if temp:
            env[RAY_TEMP_VARIABLE] = temp
        address = None
        if open_message:
            sandboxed = "; sandbox: nothing is written" if sandbox else ""
            address = f"vidrec web UI: http://{HOST}:{port}/  (data: {folder}{sandboxed}; Ctrl+C stops it)"
        return _run_app(port, env, address)


def answers(port: int, timeout: float = 2.0) -> bool:
    """Whether Streamlit's health endpoint on this port says ok (straight to the loopback, no proxy)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", "/_stcore/health")
        response = connection.getresponse()
        return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False
    finally:
        connection.close()


def _run_app(port: int, env: dict, address: str | None = None) -> int:
    # streamlit's own messages go to stderr too: `vidrec demo --json` keeps stdout for its one JSON document
    try:
        out = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stderr without a file behind it
        out = None
    child = subprocess.Popen(streamlit_command(port), env=env, cwd=str(MAIN.parents[2]), stdout=out)

    def stop(signum, frame):  # pass SIGTERM on, then exit as asked
        child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        # the child loads the catalog before its server listens: an answer means the first visitor waits for nothing
        while child.poll() is None and not answers(port):
            time.sleep(0.2)
        if address and child.poll() is None:
            print(address, file=sys.stderr, flush=True)
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        try:
            return child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
        engine: str = EngineOption,
        sandbox: bool = typer.Option(False, "--sandbox", help=SANDBOX_HELP),
    ):
        """The web UI on 127.0.0.1 (headless; open the printed address in a browser once it is printed)."""

        def body():
            code = serve(data_dir(), port, engine=engine, sandbox=sandbox)
            if code not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
                raise typer.Exit(code)

        run(False, body)
