"""llama-cpp-python's OpenAI-compatible server on a loopback port, for the remote tests.

It serves the offline default model's GGUF (assembled from the installed parts and verified
by SHA-256, as lossmap does) with every position's logits kept (``--logits_all``), which its
``echo`` + ``logprobs`` answers need.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: The reason remote tests skip on a machine where the test extra could not build it.
MISSING = (
    "llama-cpp-python's server is not installed (a source build: needs a C++ compiler and"
    " cmake): pip install -e '.[test-server]'"
)
#: The server's context length in the tests (the remote model sees two positions less).
N_CTX = 2048
ALIAS = "default"


def available() -> bool:
    return (
        importlib.util.find_spec("llama_cpp") is not None
        and importlib.util.find_spec("uvicorn") is not None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One server process; ``start`` and ``stop`` may be called again (same port)."""

    def __init__(self, gguf: Path, log: Path, port: int | None = None) -> None:
        self.gguf, self.log = gguf, log
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180.0) -> None:
        # The runner turns off the repacked CPU weight layouts (llama.cpp's AMX path crashed
        # on the first decode on this project's machines); see llama_runner.py.
        cmd = [
            sys.executable,
            str(Path(__file__).with_name("llama_runner.py")),
            "--model", str(self.gguf),
            "--model_alias", ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(N_CTX),
            "--logits_all", "true",
            "--n_threads", "2",
            "--verbose", "false",
        ]  # fmt: skip
        out = open(self.log, "ab")  # noqa: SIM115 - the child writes it until stopped
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if json.loads(r.read()).get("data"):
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
