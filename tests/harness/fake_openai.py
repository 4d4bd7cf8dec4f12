"""A scripted OpenAI-compatible chat server on loopback, for testing the `llm` agent offline.

`FakeOpenAI` serves `POST /v1/chat/completions` on 127.0.0.1 at an ephemeral port from
a background thread. Each request consumes the next scripted step (a reply, an HTTP
error, optionally after a delay) and is recorded (path, headers, JSON body). When the
script is used up it answers 418 with `x-should-retry: false`, so an unexpected extra
request fails the test loudly instead of hanging it.

    with FakeOpenAI([reply("..."), error(500), reply("...")]) as server:
        agent = LLMAgent("fake-model", base_url=server.base_url)
        ...
        assert len(server.requests) == 3
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted answer: a chat completion (status 200) or an HTTP error."""

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None  # None: ceil(characters of the messages / 4)
    # None: ceil(characters of the content / 4); "cap": the request's whole completion cap
    completion_tokens: int | str | None = None
    report_usage: bool = True
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None  # sent verbatim instead of a chat completion


def reply(content: str | None, **kwargs: Any) -> Step:
    """A successful chat completion whose message is `content`."""
    return Step(content=content, **kwargs)


def error(status: int, message: str = "scripted failure", **kwargs: Any) -> Step:
    """An HTTP error in OpenAI's error shape."""
    body = json.dumps({"error": {"message": message, "type": "test", "code": None}})
    return Step(status=status, raw_body=body, **kwargs)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(message.get("content", "")) for message in self.body.get("messages", []))


class FakeOpenAI:
    """The server; use as a context manager (starts on enter, stops on exit)."""

    def __init__(self, script: list[Step], require_key: str | None = None) -> None:
        self.script = list(script)
        self.require_key = require_key
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_step(self, recorded: Recorded) -> Step | None:
        with self._lock:
            self.requests.append(recorded)
            return self.script.pop(0) if self.script else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode(errors="replace")}
                recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if self.path != "/v1/chat/completions":
                    server._next_step(recorded)
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                    return
                if server.require_key and self.headers.get("authorization") != f"Bearer {server.require_key}":
                    server._next_step(recorded)
                    self._send(401, json.dumps({"error": {"message": "Incorrect API key provided"}}))
                    return
                step = server._next_step(recorded)
                if step is None:
                    self._send(418, json.dumps({"error": {"message": "script exhausted"}}), {"x-should-retry": "false"})
                    return
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.raw_body is not None:
                    self._send(step.status, step.raw_body, step.headers)
                    return
                prompt_tokens = step.prompt_tokens
                if prompt_tokens is None:
                    prompt_tokens = math.ceil(len(recorded.prompt_text) / 4)
                completion_tokens = step.completion_tokens
                if completion_tokens is None:
                    completion_tokens = math.ceil(len(step.content or "") / 4)
                elif completion_tokens == "cap":
                    completion_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens"))
                completion: dict[str, Any] = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": step.content},
                            "finish_reason": step.finish_reason,
                        }
                    ],
                }
                if step.report_usage:
                    completion["usage"] = {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    }
                self._send(step.status, json.dumps(completion), step.headers)

        return Handler
