"""Starts the real gateway and mock provider binaries (built by the test command) for
the SDK tests. Everything listens on 127.0.0.1 on free ports."""

import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("MEMORY_PROXY_BIN_DIR", ROOT / "target" / "debug"))
MASTER_KEY = "sk-python-tests-master"


class Process:
    """A child process whose output is read on a thread until it says where it listens."""

    def __init__(self, args, stream_name, env=None):
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE if stream_name == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream_name == "stderr" else None,
            env=env,
            text=True,
        )
        stream = getattr(self.proc, stream_name)
        self.lines = []
        found = threading.Event()
        self.url = None

        def read():
            for line in stream:
                self.lines.append(line)
                match = re.search(r"listening on (http://[0-9.:]+)", line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(30):
            self.proc.kill()
            raise RuntimeError(f"{args[0]} did not start:\n{''.join(self.lines)}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Mock(Process):
    def requests(self):
        with urllib.request.urlopen(f"{self.url}/_mock/requests") as response:
            calls = json.load(response)
        return [c for c in calls if not c["path"].startswith("/_mock")]

    def clear(self):
        request = urllib.request.Request(f"{self.url}/_mock/requests", method="DELETE")
        urllib.request.urlopen(request).close()


@pytest.fixture(scope="session")
def mock():
    process = Mock([str(BIN / "mock-provider"), "--port", "0"], "stdout")
    yield process
    process.stop()


def start_gateway(config):
    directory = tempfile.mkdtemp(prefix="memory-proxy-pytest-")
    path = pathlib.Path(directory, "config.yaml")
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if k not in ("MEMORY_PROXY_MASTER_KEY", "LITELLM_MASTER_KEY")}
    env.setdefault("MEMORY_PROXY_PLUGINS_DIR", str(ROOT / "plugins" / "dist"))
    return Process([str(BIN / "memory-proxy"), "--config", str(path), "--port", "0"], "stderr", env)


@pytest.fixture(scope="session")
def gateway(mock):
    config = f"""
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/mock-gpt
      api_base: {mock.url}/v1
  - model_name: claude
    litellm_params:
      model: anthropic/mock-claude
      api_base: {mock.url}
  - model_name: embed
    litellm_params:
      model: openai/mock-embed
      api_base: {mock.url}/v1
  - model_name: local
    litellm_params:
      model: hosted_vllm/mock-local
      api_base: {mock.url}
general_settings:
  master_key: {MASTER_KEY}
"""
    process = start_gateway(config)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def memory_gateway(mock):
    """A gateway with long-term memory on: both SDKs share one user's memories."""
    process = start_gateway(f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/mock-gpt, api_base: "{mock.url}/v1"}}
  - model_name: claude
    litellm_params: {{model: anthropic/mock-claude, api_base: "{mock.url}"}}
general_settings:
  master_key: {MASTER_KEY}
memory: {{}}
""")
    yield process
    process.stop()


@pytest.fixture
def upstream(mock):
    """The mock, emptied of earlier requests: what it holds after the test is what this test sent."""
    mock.clear()
    return mock
