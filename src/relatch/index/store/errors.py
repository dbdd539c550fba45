"""The object store's failure, importable without the S3 client (files on disk need none)."""


class StoreUnavailableError(OSError):
    """The object store failed (not: the object is missing, which is FileNotFoundError).
    The message names the store and its error, for the log; never shown to clients."""
