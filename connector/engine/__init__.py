"""The four steps (ingest, push, track, write-back), each a function over the state store."""
