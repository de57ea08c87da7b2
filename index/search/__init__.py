"""Search: hybrid (dense + BM25) retrieval of passages from a built index, then sentence scoring."""
