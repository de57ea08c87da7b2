"""The retrieval engine: documents -> sentence-exact passages -> embeddings -> FAISS + metadata."""
