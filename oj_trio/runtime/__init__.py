"""The daemon's runtime services, each reacting to durable state and sharing only a
:class:`~oj_trio.runtime.context.RuntimeContext` (store, clock, logs, settings):

* :mod:`.pipeline_driver` — one task per pipeline: run the step, decide (pure), commit;
* :mod:`.step_runners` — how each ``run`` kind of step is executed, looked up by type;
* :mod:`.pipeline_start` — commit a new pipeline, make its workspace, start its task;
* :mod:`.workspaces` — deleting workspace directories together with their records;
* :mod:`.runbook_cache` — runbooks by content hash, loading through one thread at a time;
* :mod:`.timer_service` — durable timers: one task sleeping until the earliest deadline.

The supervisor that owns the tasks is :mod:`oj_trio.nursery_runtime`; request handlers are in
:mod:`oj_trio.handlers`. A new noun (queues, workers, agents, crons) adds its own service
module here and is reconciled at boot by the supervisor.
"""
