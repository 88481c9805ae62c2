"""Spaceport's `spaces` module: Hugging Face's `@spaces.GPU` for shared-GPU (ZeroGPU) apps.

Mounted into shared-GPU apps and first on their PYTHONPATH, so `import spaces` works as on
Hugging Face with no change to the app. Outside a shared-GPU flavor (SPACES_ZERO_GPU unset)
`spaces.GPU` returns the function unchanged. Standard library only: it runs in the app's own
Python, whatever its version (3.8 and later).
"""

from .config import Config
from .zero import GPU, GPUError, disable_gradio_auto_wrap, gradio_auto_wrap

__all__ = ["GPU", "Config", "GPUError", "disable_gradio_auto_wrap", "gradio_auto_wrap"]
__version__ = "0.1.0+spaceport"
