"""Shared GPUs (Hugging Face's ZeroGPU): many Spaces on a pool of GPUs, each GPU lent to one
call at a time.

An app marks its GPU functions with `@spaces.GPU` (our `spaces` module, mounted into
shared-GPU apps: engine/gpus/zero_client). Each call asks this node's broker (`broker.py`, one
process, a Unix socket) for a lease; the broker queues calls fairly (`scheduler.py`), makes the
GPU's device node exist in that app's container only while the lease lasts
(engine/gpus/lease_gate.py), ends a call that runs past its duration, and counts each Space's
GPU seconds against its quota (`state.py`, in Redis, which the API and metrics read).
"""
