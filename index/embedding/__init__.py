"""Embedding: passages and sentences become vectors (the ONNX int8 MiniLM), with a cache."""
