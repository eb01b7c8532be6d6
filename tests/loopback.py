"""A Chat Completions stand-in on 127.0.0.1 for the VLM tests: the server plumbing they share.

Each test server subclasses :class:`LoopbackServer` with its own request handler (what it
answers is the test's business); this holds the port, the thread, the stop flag and
:func:`send_json`. Loopback only, daemon threads, bounded by the tests' own loops."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Serves ``handler`` (a BaseHTTPRequestHandler class) on a free port of 127.0.0.1 while used
    as a context manager; ``url`` is its OpenAI-style base URL, ``stop`` tells slow handlers to end."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
    """One JSON reply; 429 and 5xx carry a 1 ms retry hint so the client's retries stay fast.
    A client that hung up (a deadline test) is not an error of the server."""
    try:
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        if status == 429 or status >= 500:
            handler.send_header("retry-after-ms", "1")
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        pass


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean."""

    def log_message(self, *args):
        pass
