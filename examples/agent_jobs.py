"""The agent API's background job on Temporal: one workflow running one activity (demo, tests).

The API starts `AgentJob` through a client carrying `collectors.app.temporal_interceptor`, so the
request's trace continues into the worker; the activity's spans and logs carry the request's
tenant (W3C baggage travels in the Temporal headers). Run a worker:

    TEMPORAL_ADDRESS=127.0.0.1:7233 OBSBUNDLE_CONFIG=obsbundle.yaml python -m examples.agent_jobs
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

from temporalio import activity, workflow

TASK_QUEUE = "agent-jobs"
log = logging.getLogger("examples.agent_jobs")


@activity.defn
async def agent_step(seconds: float) -> str:
    """The job's work: sleeps `seconds` (capped at 10) and logs one line under the caller's tenant."""
    await asyncio.sleep(min(max(seconds, 0.0), 10.0))
    log.info("agent step done")
    return "done"


@workflow.defn
class AgentJob:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            agent_step, seconds, start_to_close_timeout=timedelta(seconds=30)
        )


async def run_worker(address: str, config: dict | None = None, stop: asyncio.Event | None = None) -> None:
    """A worker for `TASK_QUEUE`, instrumented as service `agent-worker`, until `stop` is set."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from collectors.app import instrument

    otel = instrument(config, service_name="agent-worker")
    try:
        client = await Client.connect(address, interceptors=[otel.temporal_interceptor()])
        async with Worker(client, task_queue=TASK_QUEUE, workflows=[AgentJob], activities=[agent_step]):
            await (stop or asyncio.Event()).wait()
    finally:
        otel.shutdown()


if __name__ == "__main__":
    from obsbundle import config as obsconfig

    path = os.environ.get("OBSBUNDLE_CONFIG")
    asyncio.run(run_worker(os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
                           obsconfig.load(path) if path else None))
