"""Backup artifacts: gzip a stream to a local file while hashing and counting, then publish it to S3;
and read a stream or an S3 object back, hashing and counting it (and copying it on the way if asked).

The object is uploaded only once the file is whole, and S3 makes an object visible only when its
upload completes, so a failed backup never leaves a partial object that looks complete.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections import Counter
from contextlib import closing
from pathlib import Path

from airflow_provider_cloudflare.sqldump import inserted_table, split_statements

CHUNK = 1 << 20  # read in 1 MiB pieces: memory stays flat whatever the object's size


class HashingWriter:
    """The one stream-and-hash primitive: a binary file that hashes (sha256, or `algorithm`) and counts
    what goes through it.

    Text is written as UTF-8, the same bytes a text file opened with encoding="utf-8", newline="\n"
    would write, so a dump written as text hashes exactly like the file it leaves. Without `fh`
    it only hashes and counts. It has no `name`, so gzip puts no file name in its header.
    """

    def __init__(self, fh=None, algorithm: str = "sha256"):
        self.fh = fh
        self._digest = hashlib.new(algorithm)
        self.bytes = 0

    def write(self, data: bytes | str) -> int:
        """Hash, count and pass on `data`; returns the number of bytes."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._digest.update(data)
        self.bytes += len(data)
        if self.fh is not None:
            self.fh.write(data)
        return len(data)

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def hexdigest(self) -> str:
        """Hex digest of everything written so far."""
        return self._digest.hexdigest()

    @property
    def sha256(self) -> str:
        """Hex sha256 of everything written so far (the default algorithm)."""
        if self._digest.name != "sha256":
            raise AttributeError(f"this writer hashes with {self._digest.name}, not sha256")
        return self._digest.hexdigest()


def hash_stream(fileobj, sink=None, chunk_size: int = CHUNK, algorithm: str = "sha256") -> tuple[str, int]:
    """Read a binary file object to its end: (hex digest, bytes read), sha256 unless `algorithm` says
    otherwise. With `sink`, every piece is also written to it, so a download or a copy is hashed in
    the same pass."""
    out = HashingWriter(sink, algorithm)
    while chunk := fileobj.read(chunk_size):
        out.write(chunk)
    return out.hexdigest(), out.bytes


def hash_s3_object(s3_hook, bucket: str, key: str, sink=None, if_match: str | None = None) -> tuple[str, int]:
    """An S3 object streamed through hash_stream: (sha256 hex, bytes), written to `sink` too when
    given. With `if_match`, S3 refuses the read (412) once the object's ETag is no longer that one."""
    extra = {"IfMatch": if_match} if if_match else {}
    body = s3_hook.get_conn().get_object(Bucket=bucket, Key=key, **extra)["Body"]
    with closing(body):
        return hash_stream(body, sink)


class GzipArtifact:
    """Write lines into `path` as gzip (mtime 0, so equal content gives equal bytes)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._raw = open(self.path, "wb")
        self._hashing = HashingWriter(self._raw)  # hashes the compressed bytes
        self._gz = gzip.GzipFile(fileobj=self._hashing, mode="wb", mtime=0, compresslevel=6)
        self.lines = 0
        self.raw_bytes = 0

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        self.raw_bytes += len(data)
        return self._gz.write(data)

    def close(self) -> dict:
        self._gz.close()
        self._raw.close()
        return {
            "bytes": self._hashing.bytes,
            "sha256": self._hashing.sha256,
            "raw_bytes": self.raw_bytes,
            "lines": self.lines,
        }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._gz.closed:
            self._gz.close()
            self._raw.close()


def gzip_sql_dump(src: str | os.PathLike, dest: str | os.PathLike) -> dict:
    """Gzip an SQL dump, counting the rows (INSERT statements) per table on the way."""
    rows: Counter = Counter()
    with open(src, encoding="utf-8") as fh, GzipArtifact(dest) as art:
        for stmt in split_statements(fh):
            table = inserted_table(stmt)
            if table:
                rows[table] += 1
            art.write(stmt.encode() + b"\n")
        return {**art.close(), "rows": dict(rows)}


def publish(s3_hook, local_path: str | os.PathLike, bucket: str, key: str, expected_bytes: int) -> dict:
    """Upload a finished artifact and check the object S3 now holds has the expected size."""
    s3_hook.load_file(str(local_path), key=key, bucket_name=bucket, replace=True)
    head = s3_hook.head_object(key=key, bucket_name=bucket)
    if head is None or head["ContentLength"] != expected_bytes:
        if head is not None:
            s3_hook.delete_objects(bucket=bucket, keys=[key])  # never leave a wrong object looking complete
        raise RuntimeError(
            f"s3://{bucket}/{key} held {head and head['ContentLength']} bytes, expected {expected_bytes}; removed"
        )
    return {"bucket": bucket, "key": key, "bytes": expected_bytes}
