"""Where distribution files are kept, when not on this machine's disk (object storage)."""
