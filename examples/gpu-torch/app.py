import time

import gradio as gr
import torch


def where() -> str:
    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    return "cpu"


def matmul(size: int) -> str:
    """Multiply two random size x size matrices on the best device; report device and time."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.rand(int(size), int(size), device=device)
    b = torch.rand(int(size), int(size), device=device)
    started = time.perf_counter()
    c = a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - started) * 1000
    return f"device: {where()}; torch {torch.__version__}; {size}x{size} matmul in {ms:.1f} ms; sum {c.sum().item():.1f}"


demo = gr.Interface(
    fn=matmul,
    inputs=gr.Slider(64, 4096, value=1024, step=64, label="Matrix size"),
    outputs=gr.Textbox(label="Result"),
    title="GPU Torch",
    description=f"Running on {where()}",
    api_name="matmul",
)

demo.launch()
