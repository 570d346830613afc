"""Pipelines as a noun: the pure rules of how a pipeline moves (:mod:`.transitions`).

The I/O side (running steps, committing decisions) is :mod:`oj_trio.runtime.pipeline_driver`;
the requests are :mod:`oj_trio.handlers.pipelines`.
"""
