"""What Hugging Face's `spaces.config.Config` tells apps: whether they run on shared GPUs."""

import os


class Config:
    zero_gpu = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true", "yes")
