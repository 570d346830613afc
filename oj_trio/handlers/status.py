"""`oj status`: the overview across projects."""

from __future__ import annotations

from .. import views
from ..messages import (
    StatusOverviewQuery,
    StatusOverviewResponse,
)
from . import Route, Services


async def status_overview(s: Services, _query: StatusOverviewQuery) -> StatusOverviewResponse:
    return {
        "type": "StatusOverview",
        "uptime_secs": s.daemon.uptime_secs(),
        "namespaces": views.status_overview(
            views.StatusInputs(
                state=s.ctx.state,
                now_ms=s.ctx.clock.now_ms(),
                queue_errors=dict(s.workers.queue_errors),
                shared_queues=await s.workers.shared_queues(),
            )
        ),
        "queue_errors": [error for _url, error in s.workers.remote.errors()],
    }


ROUTES = [Route("StatusOverview", status_overview, mutates=False, query=True)]
