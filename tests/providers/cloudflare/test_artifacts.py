"""Backup artifacts: the gzip file's hash and size are those of the bytes on disk, SQL dumps are counted
per table, publish() checks what S3 ends up holding, and streams and S3 objects read back hash and
count (and copy) every byte; HashingWriter, the one stream-and-hash primitive, hashes and counts exactly
the bytes it passes on."""

from __future__ import annotations

import gzip
import hashlib
import io
import sqlite3
import uuid

import pytest

from airflow_provider_cloudflare.artifacts import (
    GzipArtifact,
    HashingWriter,
    gzip_sql_dump,
    hash_s3_object,
    hash_stream,
    publish,
)

BUCKET = "prism-backups"


def write_artifact(path, chunks: list[bytes]) -> dict:
    with GzipArtifact(path) as art:
        for chunk in chunks:
            art.write(chunk)
        return art.close()


def test_gzip_artifact_reports_the_hash_and_size_of_the_file(tmp_path):
    chunks = [b'{"id": 1, "text": "caf\xc3\xa9"}\n', b'{"id": 2}\n' * 5000, b"\x00\xffbinary tail\n"]
    stats = write_artifact(tmp_path / "a.gz", chunks)

    on_disk = (tmp_path / "a.gz").read_bytes()
    assert stats["bytes"] == len(on_disk)  # compressed bytes, as uploaded
    assert stats["sha256"] == hashlib.sha256(on_disk).hexdigest()
    assert on_disk[3] & 0x08 == 0  # no file name in the gzip header: the bytes do not depend on the path
    raw = b"".join(chunks)
    assert gzip.decompress(on_disk) == raw
    assert (stats["raw_bytes"], stats["lines"]) == (len(raw), raw.count(b"\n"))
    assert stats["bytes"] < stats["raw_bytes"]  # it really is compressed


def test_gzip_artifact_is_deterministic(tmp_path):
    # mtime 0 in the gzip header: the same content gives the same bytes, so reruns give the same sha256.
    chunks = [f"line {i}\n".encode() for i in range(1000)]
    first = write_artifact(tmp_path / "one.gz", chunks)
    second = write_artifact(tmp_path / "two.gz", chunks)
    assert first == second
    assert (tmp_path / "one.gz").read_bytes() == (tmp_path / "two.gz").read_bytes()
    assert write_artifact(tmp_path / "three.gz", chunks[:-1])["sha256"] != first["sha256"]


def test_gzip_artifact_closed_by_the_context_manager_is_valid_gzip(tmp_path):
    # Leaving the block without close() (an error mid-backup) still leaves a well-formed local file.
    with GzipArtifact(tmp_path / "a.gz") as art:
        art.write(b"partial\n")
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == b"partial\n"


DUMP = '''-- a dump header
PRAGMA defer_foreign_keys = true;
CREATE TABLE "odd ""name""" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE plain (id INTEGER PRIMARY KEY, note TEXT, data BLOB);
CREATE VIRTUAL TABLE fts USING fts5(content);
INSERT INTO "odd ""name""" VALUES(1,'a');
INSERT INTO plain VALUES(1,'semi; colon','x');
INSERT INTO plain VALUES(2,'two
lines; INSERT INTO plain VALUES(99, ''not a row'', NULL);',X'00ff');
insert into "plain"(id, note) values(3, 'lower case');
INSERT INTO fts(rowid, content) VALUES(7,'searchable text');
INSERT INTO "odd ""name""" VALUES(2,'b');
CREATE INDEX plain_note ON plain(note);
'''


def test_gzip_sql_dump_counts_rows_per_table(tmp_path):
    (tmp_path / "dump.sql").write_text(DUMP, encoding="utf-8")
    stats = gzip_sql_dump(tmp_path / "dump.sql", tmp_path / "dump.sql.gz")

    # Quoted names are unquoted, semicolons and INSERT text inside literals are not statements.
    assert stats["rows"] == {'odd "name"': 2, "plain": 3, "fts": 1}
    data = (tmp_path / "dump.sql.gz").read_bytes()
    assert (stats["bytes"], stats["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())

    # The gzipped text is the same SQL, one statement per line group, and loads to the same counts.
    conn = sqlite3.connect(":memory:")
    conn.executescript(gzip.decompress(data).decode())
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ('"odd ""name"""', "plain", "fts")}
    assert counts == {'"odd ""name"""': 2, "plain": 3, "fts": 1}
    assert conn.execute("SELECT note FROM plain WHERE id = 2").fetchone()[0].startswith("two\nlines; INSERT")


def test_gzip_sql_dump_counts_several_inserts_on_one_line(tmp_path):
    # SQL is not line-based: two INSERTs on one line are two rows.
    (tmp_path / "dump.sql").write_text("CREATE TABLE t (v);\nINSERT INTO t VALUES(1); INSERT INTO t VALUES(2);\n")
    stats = gzip_sql_dump(tmp_path / "dump.sql", tmp_path / "dump.sql.gz")
    assert stats["rows"] == {"t": 2}


def test_publish_uploads_and_checks_the_size(s3, tmp_path):
    stats = write_artifact(tmp_path / "a.gz", [b"hello\n" * 100])
    key = f"tests/{uuid.uuid4().hex}.gz"
    try:
        assert publish(s3, tmp_path / "a.gz", BUCKET, key, stats["bytes"]) == {
            "bucket": BUCKET,
            "key": key,
            "bytes": stats["bytes"],
        }
        body = s3.get_key(key, BUCKET).get()["Body"].read()
        assert hashlib.sha256(body).hexdigest() == stats["sha256"]
    finally:
        s3.delete_objects(BUCKET, [key])


def test_publish_raises_when_the_size_does_not_match(s3, tmp_path):
    stats = write_artifact(tmp_path / "a.gz", [b"hello\n" * 100])
    key = f"tests/{uuid.uuid4().hex}.gz"
    try:
        size = stats["bytes"]
        with pytest.raises(RuntimeError, match=rf"s3://{BUCKET}/{key} held {size} bytes, expected {size + 1}; removed"):
            publish(s3, tmp_path / "a.gz", BUCKET, key, size + 1)
        assert not s3.check_for_key(key, bucket_name=BUCKET)  # a wrong object is not left behind
    finally:
        s3.delete_objects(BUCKET, [key])


def test_hashing_writer_hashes_counts_and_passes_on_bytes():
    sink = io.BytesIO()
    out = HashingWriter(sink)
    pieces = [b"\x00\xff", b"", bytes(range(256)) * 3]
    assert [out.write(p) for p in pieces] == [len(p) for p in pieces]
    data = b"".join(pieces)
    assert (out.sha256, out.bytes, sink.getvalue()) == (hashlib.sha256(data).hexdigest(), len(data), data)


def test_hashing_writer_writes_text_as_a_utf8_text_file_would(tmp_path):
    text = ["-- café ☕ 𝔘\n", "INSERT INTO t VALUES('日本');\r\n", "", "tail without newline"]
    with open(tmp_path / "as_text.sql", "w", encoding="utf-8", newline="\n") as fh:
        for piece in text:
            fh.write(piece)
    with open(tmp_path / "hashed.sql", "wb") as fh:
        out = HashingWriter(fh)
        counts = [out.write(piece) for piece in text]
    expected = (tmp_path / "as_text.sql").read_bytes()
    assert (tmp_path / "hashed.sql").read_bytes() == expected
    assert (out.sha256, out.bytes) == (hashlib.sha256(expected).hexdigest(), len(expected))
    assert counts == [len(piece.encode("utf-8")) for piece in text]  # bytes, not characters


def test_hashing_writer_mixes_text_and_bytes_and_works_without_a_file():
    out = HashingWriter()
    out.write("é")
    out.write(b"\xc3\xa9")
    out.flush()
    assert (out.sha256, out.bytes) == (hashlib.sha256("éé".encode()).hexdigest(), 4)


def test_hashing_writer_that_got_nothing_is_the_empty_hash():
    out = HashingWriter(io.BytesIO())
    assert (out.sha256, out.bytes) == (hashlib.sha256(b"").hexdigest(), 0)
    out.write("")
    assert (out.sha256, out.bytes) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_stream_hashes_and_counts_every_byte_across_chunks():
    data = bytes(range(256)) * 41 + b"tail"  # not a multiple of the chunk size
    assert hash_stream(io.BytesIO(data), chunk_size=1000) == (hashlib.sha256(data).hexdigest(), len(data))
    assert hash_stream(io.BytesIO(b"")) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_stream_copies_into_the_sink_as_it_hashes(tmp_path):
    data = b"line\n" * 50_000
    with gzip.open(tmp_path / "copy.gz", "wb") as sink:
        found = hash_stream(io.BytesIO(data), sink=sink, chunk_size=4096)
    assert found == (hashlib.sha256(data).hexdigest(), len(data))
    assert gzip.decompress((tmp_path / "copy.gz").read_bytes()) == data


@pytest.fixture
def s3_object(s3):
    """An object of a few chunks in the S3 stand-in: (key, its bytes, its ETag)."""
    key, data = f"tests/{uuid.uuid4().hex}.bin", uuid.uuid4().bytes * 200_000  # 3.2 MB: several 1 MiB reads
    etag = s3.get_conn().put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]
    yield key, data, etag
    s3.delete_objects(BUCKET, [key])


def test_hash_s3_object_streams_the_object(s3, s3_object, tmp_path):
    key, data, etag = s3_object
    expected = (hashlib.sha256(data).hexdigest(), len(data))
    assert hash_s3_object(s3, BUCKET, key) == expected
    with open(tmp_path / "copy", "wb") as sink:
        assert hash_s3_object(s3, BUCKET, key, sink=sink, if_match=etag) == expected
    assert (tmp_path / "copy").read_bytes() == data


def test_hash_s3_object_refuses_a_replaced_or_missing_object(s3, s3_object):
    from botocore.exceptions import ClientError

    key, _, _ = s3_object
    with pytest.raises(ClientError, match="PreconditionFailed"):
        hash_s3_object(s3, BUCKET, key, if_match='"0123456789abcdef0123456789abcdef"')
    with pytest.raises(ClientError, match="NoSuchKey"):
        hash_s3_object(s3, BUCKET, key + ".missing")


def test_another_algorithm_hashes_the_same_stream(tmp_path):
    """D1's import wants an MD5 etag of the file: the same reader, another algorithm."""
    data = "SELECT 'é';\n".encode() * 5000
    assert hash_stream(io.BytesIO(data), algorithm="md5", chunk_size=777) == (hashlib.md5(data).hexdigest(), len(data))
    writer = HashingWriter(algorithm="md5")
    writer.write(data)
    assert writer.hexdigest() == hashlib.md5(data).hexdigest()
    with pytest.raises(AttributeError, match="hashes with md5, not sha256"):
        _ = writer.sha256
