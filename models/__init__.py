"""Floor 1: pure ML on tensors (the CLIP wrapper, the multi-task network, its trainer and metrics). It never
sees the data directory, the store or a file format; `ingest/` hands it tensors."""
