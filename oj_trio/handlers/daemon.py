"""The daemon itself: liveness, version handshake, counters, shutdown."""

from __future__ import annotations

import os

from .. import views
from .._version import __version__
from ..messages import (
    HelloRequest,
    HelloResponse,
    PingRequest,
    PongResponse,
    ShutdownRequest,
    ShuttingDownResponse,
    StatusRequest,
    StatusResponse,
)
from . import Route, Services


async def ping(_s: Services, _request: PingRequest) -> PongResponse:
    return {"type": "Pong"}


async def hello(_s: Services, _request: HelloRequest) -> HelloResponse:
    return {"type": "Hello", "version": __version__}


async def status(s: Services, _request: StatusRequest) -> StatusResponse:
    return {
        "type": "Status",
        "version": __version__,
        "uptime_secs": s.daemon.uptime_secs(),
        "pid": os.getpid(),
        **views.counts(s.ctx.state),
    }


async def shutdown(s: Services, request: ShutdownRequest) -> ShuttingDownResponse:
    s.daemon.request_shutdown(kill=bool(request.get("kill")))
    return {"type": "ShuttingDown"}


ROUTES = [
    Route("Ping", ping, mutates=False),
    Route("Hello", hello, mutates=False),
    Route("Status", status, mutates=False),
    # Refused while draining, like every request that changes what the daemon does.
    Route("Shutdown", shutdown, mutates=True),
]
