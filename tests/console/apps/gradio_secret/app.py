import hashlib
import os

import gradio as gr

SECRET = os.environ.get("PROBE_SECRET", "")
STATE = (
    f"probe secret: {hashlib.sha256(SECRET.encode()).hexdigest()[:8]}"
    if SECRET
    else "probe secret: none"
)


def greet(name: str) -> str:
    return f"Hello, {name}!"


with gr.Blocks(title="Console Probe") as demo:
    gr.Markdown(f"# Console Probe\n\n{STATE}")
    name = gr.Textbox(label="Name")
    out = gr.Textbox(label="Greeting")
    name.submit(greet, name, out)

demo.launch()
