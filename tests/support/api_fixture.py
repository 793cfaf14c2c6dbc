"""A loopback server that replays recorded GitHub API responses (tests/fixtures/github): the API cannot
be reached from the test machine, so PyGithub talks to this instead and the requests it made are kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
# (method, path with query, JSON body or {}) -> (status, response text)
Answer = Callable[[str, str, dict], tuple[int, str]]


class ApiFixture:
    """`requests` holds (method, path, headers, body) of every request; `base` is the API URL to give."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[tuple[str, str, dict, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers["Content-Length"] or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                owner.requests.append((self.command, self.path, dict(self.headers), body))
                status, text = answer(self.command, self.path, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fixture(self, name: str) -> str:
        """A recorded response, its GitHub URLs pointing at this server."""
        return (FIXTURES / name).read_text().replace("https://api.github.com", self.base)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
