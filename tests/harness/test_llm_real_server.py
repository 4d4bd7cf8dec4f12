"""The `llm` agent against a real OpenAI-compatible server: llama.cpp's (`llama-cpp-python[server]`)
serving the packaged SmolLM2-135M-Instruct GGUF on loopback, driving a short demo/mean campaign.

The small model's replies are mostly malformed; the point is the real protocol, token
accounting and malformed-reply handling end to end. Skipped where `llama_cpp` is not
installed (`make install EXTRAS=dev,llm-server` compiles it: minutes). Slow: the server
loads the model and generates on CPU.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from interpgym.harness.campaign import run_campaign
from interpgym.harness.store import RunStore

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed "
                                               "(make install EXTRAS=dev,llm-server)")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from interpgym.subjects.lm_loader import packaged_gguf

    port = _free_port()
    # The server logs a lot on stderr: to a file, never an unread pipe (which would block it).
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w+b")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--n_threads", "1", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama.cpp server exited: {log.read().decode()[-2000:]}") from None
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, 9)
        raise RuntimeError("llama.cpp server did not come up in 180 s")
    yield base_url
    os.killpg(proc.pid, 9)
    proc.wait()


def test_llm_campaign_against_llama_cpp_server(llama_server, demo):
    record = run_campaign("demo/mean", "llm", trials=2, seed=0,
                          agent_options={"model": "smollm2", "base_url": llama_server, "max_retries": 0,
                                         "max_completion_tokens": 256, "min_completion_tokens": 64,
                                         "max_total_tokens": 40_000, "max_prompt_chars": 8000})
    assert len(record.trials) == 2 and record.status == "finished"
    for trial in record.trials:  # every reply became a recorded trial: ran, or malformed -> invalid
        assert trial.status in ("ok", "invalid", "crash", "timeout", "oom")
        if trial.status == "invalid" and trial.files is None:
            assert trial.error.startswith("malformed reply")
    usage = RunStore().trial_usage(record.campaign_id)
    # real token accounting from the server's `usage` field
    assert all(u.get("prompt_tokens", 0) > 100 and u.get("completion_tokens", 0) >= 1 for u in usage), usage
