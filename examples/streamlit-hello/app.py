import streamlit as st

st.title("Streamlit Hello")
name = st.text_input("Your name", "World")
st.write(f"Hello, {name}!")
count = st.slider("How many stars?", 1, 10, 3)
st.write("⭐" * count)
