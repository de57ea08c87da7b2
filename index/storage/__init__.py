"""Storage: index generations on disk and the passage index (flat or IVF-PQ)."""
