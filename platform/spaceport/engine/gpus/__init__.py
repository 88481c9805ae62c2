"""GPUs: find the node's devices, give whole devices to Spaces, attach them to containers.

`inventory` discovers (NVML) or reads (config) the devices, `allocator` hands them out through
the database so two Spaces never share one, and `attach` turns an allocation into the
container options of the configured mode.
"""
