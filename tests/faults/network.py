"""A TCP proxy the fault tests can cut: an S3 server that goes away for a while and comes back."""

from __future__ import annotations

import contextlib
import socket
import threading

from ..support import free_port


class OutageProxy:
    """Forwards 127.0.0.1:`port` to a target; `down()` refuses new connections and cuts open ones
    (as a restarting server does), `up()` serves again on the same port."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut_on: tuple[bytes, float] | None = None
        self.cuts = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def outage(self, seconds: float) -> threading.Thread:
        """Goes down now and comes back after `seconds`, on a thread."""
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.start()
        return timer

    def cut_on(self, marker: bytes, seconds: float) -> None:
        """Goes down for `seconds` when a request holding `marker` passes (that request is lost)."""
        self._cut_on = (marker, seconds)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: down
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections |= {client, server}
            for source, sink, watch in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pipe, args=(source, sink, watch), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                cut = self._cut_on
                if watch and cut is not None and cut[0] in data:
                    self._cut_on = None
                    self.cuts += 1
                    self.outage(cut[1])
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()
