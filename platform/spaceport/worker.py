"""The node's worker process (`spaceport worker`, `celery -A spaceport.worker`): one Celery app
with the builder's tasks and the control plane's, so a build's deploy runs in the slot that
built it (`queue.chain`). The only module that puts the two source roots in one process.
"""

from __future__ import annotations

from spaceport.lifecycle import tasks as lifecycle_tasks
from spaceport.queue import celery_app
from spaceport_builder import tasks as builder_tasks

app = celery_app()
TASK_MODULES = (builder_tasks, lifecycle_tasks)
