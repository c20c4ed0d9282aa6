"""Celery routing as data: the exchange, the two queues and which task goes to which.

Task and queue names are a wire contract between the web layer, the CLI and every deployed
worker: `tasks.app` builds the Celery app's routes from these, `tasks.pipeline` registers the
tasks under these names and `tasks.jobs` sends chains by name.
"""

from __future__ import annotations

EXCHANGE = "idphoto"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, CPU_QUEUE)

# Task names: a wire contract between the web layer and every deployed worker.
SEGMENT = "idphoto.segment"
MATTE_REFINE = "idphoto.matte_refine"
COMPOSITE = "idphoto.composite"
STORE = "idphoto.store"
FAIL_JOB = "idphoto.fail_job"  # the chain's error callback (runs where the failure is seen)

TASK_QUEUES = {
    SEGMENT: GPU_QUEUE,
    MATTE_REFINE: CPU_QUEUE,
    COMPOSITE: CPU_QUEUE,
    STORE: CPU_QUEUE,
    FAIL_JOB: CPU_QUEUE,
}
