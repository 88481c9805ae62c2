import streamlit as st

st.title("Streamlit Echo")
st.session_state.runs = st.session_state.get("runs", 0) + 1
text = st.text_input("Say something", "")
if text:
    st.write(f"Echo: {text}")
upload = st.file_uploader("A file")
if upload is not None:
    st.write(f"Uploaded {len(upload.getvalue())} bytes")
st.caption(f"runs in this session: {st.session_state.runs}")
