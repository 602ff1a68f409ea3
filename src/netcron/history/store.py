"""The content-addressed output store: one compressed row per distinct output.

A run points at its output by the SHA-256 of the text stored; identical outputs (the
same configuration backed up every hour) share one row. For a run that tracks changes
the text stored is the normalized one: the blob keeps the volatile lines of the first
run that stored it, and each run only those of its own that differ
(``netcron.history.normalize``), so an unchanged configuration costs one small row per
run however often its clock lines move.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Integer, LargeBinary, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.db.models import Output
from netcron.history.normalize import Normalized, Residue, restore

#: zlib level 6 (its default): within a few percent of 9 on configurations, at half the CPU.
LEVEL = 6

_OUTPUTS = cast(Table, Output.__table__)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def pack(text: str) -> bytes:
    return zlib.compress(text.encode(), LEVEL)


def unpack(data: bytes) -> str:
    return zlib.decompress(data).decode()


@dataclass(frozen=True)
class Blob:
    """A text ready to store: its key, its compressed bytes, and what the run row keeps."""

    hash: bytes
    data: bytes
    size: int
    text: str
    residue: Residue | None = None
    #: The text is a normalized one, to compare with the series' previous run.
    normalized: bool = False

    @classmethod
    def of(cls, text: str) -> Blob:
        return cls(digest(text), pack(text), len(text.encode()), text)

    @classmethod
    def of_normalized(cls, normalized: Normalized) -> Blob:
        blob = cls.of(normalized.text)
        return cls(blob.hash, blob.data, blob.size, blob.text, normalized.residue(), True)


#: Insert a blob unless it is there (a no-op for a NULL hash: a record without output).
#: Meant as a CTE of the statement that makes a run's row, so that storing it costs no
#: round trip of its own.
STORE_BLOB = (
    insert(_OUTPUTS)
    .from_select(
        [_OUTPUTS.c.hash, _OUTPUTS.c.size, _OUTPUTS.c.data, _OUTPUTS.c.volatile],
        select(
            bindparam("blob_hash", type_=LargeBinary),
            bindparam("blob_size", type_=Integer),
            bindparam("blob_data", type_=LargeBinary),
            bindparam("blob_volatile", type_=_OUTPUTS.c.volatile.type),
        ).where(bindparam("blob_hash", type_=LargeBinary).is_not(None)),
    )
    .on_conflict_do_nothing(index_elements=[_OUTPUTS.c.hash])
)


@dataclass(frozen=True)
class Stored:
    """A blob as read back: its text, and the lines its first run set aside."""

    text: str
    volatile: Residue | None = None


async def stored_blobs(
    session: AsyncSession, hashes: Iterable[bytes | None]
) -> dict[bytes, Stored]:
    """The stored blobs of these hashes, decompressed (one query)."""
    wanted = {bytes(h) for h in hashes if h is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(Output.hash, Output.data, Output.volatile).where(Output.hash.in_(wanted))
    )
    return {bytes(h): Stored(unpack(bytes(data)), volatile) for h, data, volatile in rows}


def output_text(
    blobs: dict[bytes, Stored], blob_hash: bytes | None, residue: Residue | None
) -> str | None:
    """A run's output as the device gave it (masked), from its blob and its residue."""
    if blob_hash is None:
        return None
    blob = blobs.get(bytes(blob_hash))
    return None if blob is None else restore(blob.text, residue, blob.volatile)
