import os
import time

import gradio as gr
import spaces


@spaces.GPU(duration=5)  # two calls at once fit the test node's quota (24 s)
def infer(text: str) -> str:
    time.sleep(3)  # a model's forward pass, holding the GPU
    return f"{text} ran on {os.environ.get('CUDA_VISIBLE_DEVICES')}"


with gr.Blocks(title="Zero Probe") as demo:
    gr.Markdown("# Zero Probe")
    prompt = gr.Textbox(label="Prompt")
    answer = gr.Textbox(label="Answer")
    gr.Button("Run").click(infer, prompt, answer, concurrency_limit=None)

demo.launch()
