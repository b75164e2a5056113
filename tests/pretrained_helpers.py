"""A loopback HTTP server that serves weights files and counts requests, and h5 writers."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator

import h5py


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) around `handler`, started and
    stopped as a context manager."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class WeightsServer(LoopbackServer):
    """Serves `files` (name -> bytes) at http://127.0.0.1:PORT/NAME; 404 otherwise.

    Attributes:
        requests: the paths requested, in order.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                name = self.path.lstrip("/")
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A listening socket that accepts connections and never answers; yields its URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused at once)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


def write_legacy_weights(model, path) -> bytes:
    """Writes `model`'s weights as Keras publishes keras.applications files; returns bytes."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as handle:
        save_weights_to_hdf5_group(handle, model)
    with open(path, "rb") as handle:
        return handle.read()


def saved_weights(path) -> dict[str, list]:
    """layer name -> its weight arrays, in the file's order (layers with weights only)."""
    import numpy as np

    out = {}
    with h5py.File(path, "r") as handle:
        for layer in handle.attrs["layer_names"]:
            name = layer.decode() if isinstance(layer, bytes) else layer
            group = handle[name]
            names = group.attrs["weight_names"]
            if len(names):
                out[name] = [np.asarray(group[w]) for w in names]
    return out
