"""Sources: files and web pages become Documents (discovery, extraction in a sandbox, fetching)."""
