"""The local stack's AWS: moto's server on a thread of this process, over HTTP like the real endpoints."""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

from infra import moto_patches

# infra/env/local.json (for `sam local invoke` in Docker) names this port; MOTO_PORT overrides it.
DEFAULT_PORT = 5005


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer that reports a bind failure instead of waiting forever for a server that never starts."""

    error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            super()._server_entry()
        except BaseException as exc:
            self.error = exc
            self._server_ready_event.set()


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        moto_patches.apply()
        self._server = _Server(ip_address=host, port=port, verbose=False)

    def start(self) -> str:
        """Start serving; returns the endpoint URL. Raises what binding raised (werkzeug: SystemExit) if it fails."""
        # One line per AWS call would bury the gateway's own log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        if self._server.error is not None:
            raise self._server.error
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server.error is None:
            self._server.stop()
