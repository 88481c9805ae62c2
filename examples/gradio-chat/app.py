import time

import gradio as gr


def respond(message: str, history: list) -> str:
    """Stream the reply one word at a time: each yield is the reply so far."""
    words = f"You said: {message}. This reply is streamed one word at a time.".split()
    for i in range(1, len(words) + 1):
        time.sleep(0.05)
        yield " ".join(words[:i])


demo = gr.ChatInterface(fn=respond, title="Gradio Chat", api_name="chat")

demo.launch()
