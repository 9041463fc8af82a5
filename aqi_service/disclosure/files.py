"""Uploaded files on disk: outside any web root, under generated names, hashed while written.

A file is streamed to a hidden temporary name in the attachment folder (bounded: the
upload stops at the size limit), checked, then renamed to a random 32-hex-digit name. The
uploaded name is kept only as display text in the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from aqi_service.disclosure import uploads
from aqi_service.disclosure.active_content import inspect
from aqi_service.disclosure.service import Actor, _audit, attachment_json
from aqi_service.storage import disclosure as store

CHUNK = 64 * 1024


class TooLarge(uploads.UploadError):
    """The upload passed the size limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"the file is larger than {limit} bytes")


@dataclass(frozen=True, slots=True)
class Received:
    """A file written to its temporary name."""

    path: Path
    size: int
    sha256: str


class AttachmentStore:
    """The attachment folder."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def ensure(self) -> None:
        """Create the folder (private to the service's user)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)

    def path_of(self, storage_name: str) -> Path:
        """Where a stored file is (the name comes from the database, never from a request)."""
        if len(storage_name) != 32 or any(c not in "0123456789abcdef" for c in storage_name):
            raise ValueError("not a storage name")
        return self.directory / storage_name

    async def receive(self, chunks: AsyncIterator[bytes]) -> Received:
        """Write chunks to a temporary file, hashing them; TooLarge past the limit."""
        self.ensure()
        tmp = self.directory / f".upload-{secrets.token_hex(16)}"
        digest = hashlib.sha256()
        size = 0
        loop = asyncio.get_running_loop()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(self.max_bytes)
                    digest.update(chunk)
                    await loop.run_in_executor(None, f.write, chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Received(tmp, size, digest.hexdigest())

    def commit(self, received: Received) -> str:
        """Give a received file its permanent random name; the name."""
        name = secrets.token_hex(16)
        os.replace(received.path, self.directory / name)
        return name

    def discard(self, received: Received) -> None:
        """Remove a received file that was refused."""
        received.path.unlink(missing_ok=True)

    def remove(self, storage_name: str) -> None:
        """Remove a committed file whose database row was not written."""
        self.path_of(storage_name).unlink(missing_ok=True)


def inspect_content(path: Path, content_type: str) -> None:
    """Refuse active content and polyglots (``active_content``) in a typed file."""
    ole = uploads.ole_stream_names(path) if content_type in (uploads.DOC, uploads.XLS) \
        else None
    inspect(path, content_type, ole)


async def _chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]


async def store_file(conn: asyncpg.Connection, files: AttachmentStore, received: Received,
                     filename: str, declared_type: str | None, actor: Actor, *,
                     is_sample: bool = False) -> dict[str, Any]:
    """Check a received file (type and content by its bytes), keep it and record it; its JSON.

    The caller holds a transaction; on any refusal or failure the file is removed.
    """
    try:
        name = uploads.display_name(filename)
        content_type = uploads.check_type(declared_type, uploads.sniff(received.path), name)
        await asyncio.to_thread(inspect_content, received.path, content_type)
    except BaseException:
        files.discard(received)
        raise
    storage_name = files.commit(received)
    try:
        row = await store.insert_attachment(conn, storage_name, name, content_type,
                                            received.size, received.sha256, actor.name,
                                            is_sample)
        doc = attachment_json(row)
        await _audit(conn, actor, "upload", "attachment", row["id"], None, doc)
    except BaseException:
        files.remove(storage_name)
        raise
    return doc


async def keep_upload(conn: asyncpg.Connection, files: AttachmentStore, received: Received,
                      filename: str, declared_type: str | None, actor: Actor, *,
                      is_sample: bool = False) -> dict[str, Any]:
    """:func:`store_file` in its own transaction (an upload through the admin API)."""
    async with conn.transaction():
        return await store_file(conn, files, received, filename, declared_type, actor,
                                is_sample=is_sample)


async def store_bytes(conn: asyncpg.Connection, files: AttachmentStore, data: bytes,
                      filename: str, content_type: str, actor: Actor, *,
                      is_sample: bool = False) -> dict[str, Any]:
    """Keep a file given as bytes (seed data); the same file and name are stored once."""
    existing = await store.attachment_by_content(conn, hashlib.sha256(data).hexdigest(),
                                                 filename)
    if existing is not None and files.path_of(existing["storage_name"]).exists():
        return attachment_json(existing)
    received = await files.receive(_chunks_of(data))
    return await store_file(conn, files, received, filename, content_type, actor,
                            is_sample=is_sample)
