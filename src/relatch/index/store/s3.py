"""Distribution files in an S3 bucket (``RELATCH_FILES_URL=s3://bucket/prefix``).

django-storages' S3 backend does the talking (signing, multipart uploads, listing); this
subclass changes three things Relatch depends on:

- **Reads stream.** The stock file downloads the whole object to a temporary file before the
  first byte; :class:`ObjectReader` reads the object's body as it is sent, and a seek (a
  resumed download's Range) asks the store for that range only.
- **Uploads keep memory flat.** Multipart parts of 8 MB, one at a time: a 300 MB upload costs
  one part of memory, not boto3's default of ten parts in flight.
- **Failures say which part failed.** Every error of the store (refused connection, denied
  key, missing bucket) becomes :class:`StoreUnavailableError`, an ``OSError`` naming the
  store, so callers' ``except OSError`` paths (a 503, a refused upload with nothing kept, a
  failed readiness check) name it instead of crashing with a library's exception.
"""

import io
from collections.abc import Iterator
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from relatch.index.store.errors import StoreUnavailableError

PART_SIZE = 8 * 1024 * 1024


def _is_missing(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error.response.get("Error", {}).get("Code", "")
    return status == 404 and code != "NoSuchBucket"


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', 'error')}: {detail.get('Message', '')}".strip(": ")
    return str(error) or type(error).__name__


class ObjectReader(io.RawIOBase):
    """One object's bytes, read as the store sends them; ``seek`` costs nothing until the
    next read, which asks for the rest of the object from there (an HTTP Range)."""

    def __init__(self, storage: "RelatchS3Storage", key: str, size: int) -> None:
        super().__init__()
        self.storage, self.key, self.size = storage, key, size
        self.position = 0
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        wanted = max(0, base + offset)
        if wanted != self.position:
            self._drop_body()
            self.position = wanted
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size:
            return 0
        if self.body is None:
            self.body = self.storage.object_body(self.key, start=self.position)
        data = self.storage.guarded(self.body.read, len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class RelatchS3Storage(S3Storage):
    """django-storages' S3 storage with streamed reads and errors that name the store."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("transfer_config", TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
            max_concurrency=1, use_threads=False))
        # A store that does not answer fails a request in seconds, not boto3's default of a
        # minute per attempt: a download gets its 503 and an upload its refusal while the
        # client still waits, and a readiness check its answer.
        options.setdefault("client_config", Config(
            s3={"addressing_style": options.get("addressing_style")},
            signature_version=options.get("signature_version"),
            connect_timeout=5, read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"}))
        super().__init__(**options)

    def describe(self) -> str:
        """Where the files are, for messages: ``s3://bucket/prefix at endpoint``."""
        where = f"s3://{self.bucket_name}/{self.location}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def guarded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call``'s result; the store's failures as StoreUnavailableError naming it."""
        try:
            return call(*args, **kwargs)
        except ClientError as error:
            if _is_missing(error):
                what = kwargs.get("Key") or (args[0] if args else "the object")
                raise FileNotFoundError(f"not in the file store: {what}") from None
            raise StoreUnavailableError(
                f"the file store ({self.describe()}) failed: {_describe(error)}") from None
        except BotoCoreError as error:
            raise StoreUnavailableError(
                f"the file store ({self.describe()}) failed: {_describe(error)}") from None

    def key_of(self, name: str) -> str:
        """The object key of storage name ``name`` (the prefix joined, checked for escapes)."""
        return str(self._normalize_name(clean_name(name)))

    def object_body(self, key: str, *, start: int) -> Any:
        """The body of ``key`` from byte ``start`` on, as the store streams it."""
        arguments: dict[str, Any] = {"Bucket": self.bucket_name, "Key": key}
        if start:
            arguments["Range"] = f"bytes={start}-"
        client = self.connection.meta.client
        return self.guarded(client.get_object, **arguments)["Body"]

    def _open(self, name: str, mode: str = "rb") -> File:
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("stored files are written with save(), never opened to write")
        key = self.key_of(name)
        head = self.guarded(self.connection.meta.client.head_object,
                            Bucket=self.bucket_name, Key=key)
        reader = io.BufferedReader(ObjectReader(self, key, int(head["ContentLength"])),
                                   buffer_size=256 * 1024)
        stored = File(reader, name=name)
        stored.size = int(head["ContentLength"])
        return stored

    def _save(self, name: str, content: Any) -> str:
        return str(self.guarded(super()._save, name, content))

    def delete(self, name: str) -> None:
        self.guarded(super().delete, name)

    def exists(self, name: str) -> bool:
        return bool(self.guarded(super().exists, name))

    def walk(self, directory: str) -> Iterator[str]:
        """Every storage name under ``directory``, in key order, a page of keys at a time:
        one request per thousand objects, where directory by directory would be one per
        fan-out directory (the orphan sweep, relatch.index.upload.sweep)."""
        prefix = self.key_of(directory).rstrip("/") + "/"
        skip = len(self.key_of("")) if self.location else 0
        pages = self.connection.meta.client.get_paginator("list_objects_v2")
        listing = iter(pages.paginate(Bucket=self.bucket_name, Prefix=prefix))
        while (page := self.guarded(next, listing, None)) is not None:
            for item in page.get("Contents", ()):
                yield item["Key"][skip:]

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        return self.guarded(super().listdir, path)

    def size(self, name: str) -> int:
        return int(self.guarded(super().size, name))

    def get_modified_time(self, name: str) -> Any:
        return self.guarded(super().get_modified_time, name)

    def url(self, name: str, parameters: dict[str, Any] | None = None,
            expire: int | None = None, http_method: str | None = None) -> str:
        return str(self.guarded(super().url, name, parameters, expire, http_method))
