import gradio as gr

GREETING = "Hello"


def greet(name: str) -> str:
    return f"{GREETING}, {name}!"


demo = gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox(label="Greeting"),
                    title="Gradio Hello")

demo.launch()
