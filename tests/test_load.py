"""Load: physical line numbers, blank lines, BOM, CRLF, encodings and whole-file failures."""

import gc
import gzip
import hashlib
import io
import threading
import time

import polars as pl
import pytest

from import_pipeline.errors import BatchUnreadable
from import_pipeline.pipeline.frames import NOT_UTF8, TOO_LONG
from import_pipeline.pipeline.load import LoadStats

from .conftest import iter_line_chunks


def load(
    data: bytes, *, gz: bool = False, max_line: int = 1000, chunk: int = 16, ratio: int = 1000
):
    stats = LoadStats()
    stored = gzip.compress(data) if gz else data
    frames = list(
        iter_line_chunks(
            io.BytesIO(stored),
            gzipped=gz,
            stored_size=len(stored),
            stats=stats,
            max_line_bytes=max_line,
            max_decompressed_bytes=10**9,
            max_decompression_ratio=ratio,
            chunk_bytes=chunk,
        )
    )
    return pl.concat(frames), stats


def test_blank_lines_are_counted_not_kept_and_numbers_are_physical() -> None:
    frame, stats = load(b'{"a":1}\n\n   \n{"b":2}\n\t\n{"c":3}')
    assert frame["line_number"].to_list() == [1, 4, 6]
    assert stats.physical_lines == 6 and stats.blank_lines == 3


def test_bom_is_dropped_and_crlf_is_a_line_end() -> None:
    frame, _ = load(b'\xef\xbb\xbf{"a":1}\r\n{"b":2}\r\n')
    assert frame["text"].to_list() == ['{"a":1}', '{"b":2}']


def test_unicode_line_separators_are_content() -> None:
    text = '{"t":"a\u2028b\u2029c\u0085d"}\n{"u":1}\n'.encode()
    frame, stats = load(text)
    assert frame.height == 2 and stats.physical_lines == 2
    assert "\u2028" in frame["text"][0]


def test_invalid_utf8_fails_only_its_line() -> None:
    frame, _ = load(b'{"a":1}\n{"b":"\xff\xfe"}\n{"c":3}\n')
    assert frame.filter(pl.col("problem") == NOT_UTF8)["line_number"].to_list() == [2]
    assert frame.filter(pl.col("problem").is_null())["line_number"].to_list() == [1, 3]


def test_line_too_long_is_marked_without_keeping_it() -> None:
    long_line = b'{"x":"' + b"y" * 5000 + b'"}'
    frame, stats = load(b'{"a":1}\n' + long_line + b'\n{"c":3}', max_line=100)
    row = frame.filter(pl.col("line_number") == 2).row(0, named=True)
    assert row["problem"] == TOO_LONG and row["text"] is None
    assert stats.physical_lines == 3


def test_one_chunk_with_a_cr_a_blank_and_an_over_long_line() -> None:
    data = b'{"a":1}\r\n \t\r\n{"x":"' + b"y" * 500 + b'"}\n{"c":3}\r\n\n{"d":4}'
    frame, stats = load(data, max_line=100, chunk=1 << 20)
    assert frame["line_number"].to_list() == [1, 3, 4, 6]
    assert frame["text"].to_list() == ['{"a":1}', None, '{"c":3}', '{"d":4}']
    assert frame["problem"].to_list() == [None, TOO_LONG, None, None]
    assert (stats.physical_lines, stats.blank_lines) == (6, 2)


def test_checksum_of_a_file_read_in_many_blocks_is_its_sha256() -> None:
    data = b"".join(b'{"n":%d}\n' % n for n in range(2_000_000))  # 27 MB: several read blocks
    frame, stats = load(data, chunk=4 << 20)
    assert stats.checksum == hashlib.sha256(data).hexdigest()
    assert stats.bytes_read == len(data) and frame.height == stats.physical_lines == 2_000_000
    assert frame["line_number"].is_sorted() and frame["line_number"][-1] == 2_000_000


def test_gzip_is_read_and_checksum_is_of_stored_bytes() -> None:
    frame, stats = load(b'{"a":1}\n{"b":2}\n', gz=True)
    assert frame.height == 2 and len(stats.checksum) == 64


@pytest.mark.parametrize(
    ("data", "gz", "reason"),
    [
        (b"", False, "empty"),
        (b"\n \n\r\n", False, "only blank"),
    ],
)
def test_unreadable_batches(data: bytes, gz: bool, reason: str) -> None:
    with pytest.raises(BatchUnreadable, match=reason):
        load(data, gz=gz)


def test_truncated_gzip_is_unreadable() -> None:
    stored = gzip.compress(b'{"a":1}\n' * 1000)
    stats = LoadStats()
    with pytest.raises(BatchUnreadable, match="truncated gzip"):
        list(
            iter_line_chunks(
                io.BytesIO(stored[: len(stored) // 2]), gzipped=True, stored_size=len(stored) // 2,
                stats=stats, max_line_bytes=1000, max_decompressed_bytes=10**9, max_decompression_ratio=1000,
            )
        )  # fmt: skip


def test_gzip_bomb_is_refused() -> None:
    with pytest.raises(BatchUnreadable, match="gzip bomb"):
        load(b"\n" * 10_000_000, gz=True, ratio=50)


def test_no_hashing_thread_outlives_a_file_read_or_abandoned() -> None:
    data = b'{"a":1}\n' * 300_000
    chunks = iter_line_chunks(
        io.BytesIO(data),
        gzipped=False,
        stored_size=len(data),
        stats=LoadStats(),
        max_line_bytes=1000,
        max_decompressed_bytes=10**9,
        max_decompression_ratio=100,
        chunk_bytes=1 << 16,
    )
    next(chunks)
    assert any(t.name.startswith("batch-sha256") for t in threading.enumerate())
    chunks.close()
    del chunks
    gc.collect()
    load(data)  # read to the end
    deadline = time.monotonic() + 5
    while any(t.name.startswith("batch-sha256") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a hashing thread was left running"
        time.sleep(0.01)


def test_a_big_file_split_by_worker_processes_loads_as_in_one(tmp_path, monkeypatch) -> None:
    """A file of many chunks is split into lines by worker processes: the same lines, numbers,
    problems and counts as one process reading it."""
    from import_pipeline.landing import LandingZone
    from import_pipeline.pipeline import stages
    from import_pipeline.settings import Settings

    lines = []
    for n in range(3000):
        lines.append(
            b"" if n % 97 == 0
            else b"\xff\xfe not utf-8" if n % 501 == 0
            else b"x" * 300 if n % 777 == 0
            else b'{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/%d"}]}\r' % n
        )  # fmt: skip
    data = b"\n".join(lines) + b"\n"
    folder = tmp_path / "landing" / "rec"
    folder.mkdir(parents=True)
    (folder / "b.jsonl").write_bytes(data)
    settings = Settings.from_env(
        {"IMPORT_PIPELINE_HOME": str(tmp_path), "IMPORT_PIPELINE_MAX_LINE_BYTES": "200"}
    )
    landing = LandingZone(settings.landing)
    (batch,) = landing.record_folder("rec").batches
    from import_pipeline.pipeline import load as load_module

    monkeypatch.setattr(load_module, "_READ_BLOCK", 4096)
    monkeypatch.setattr(load_module, "CHUNK_BYTES", 8192)  # ~25 chunks: worker processes split them
    loaded = stages.load_batch(
        landing, batch, batch_id="b", staging=tmp_path / "s", settings=settings
    )
    assert len(loaded.chunk_paths) > 20 and loaded.unreadable is None
    split = pl.concat(pl.read_parquet(path) for path in loaded.chunk_paths)
    alone, stats = load(data, max_line=200, chunk=10**9)
    assert split.equals(alone)
    assert (loaded.stats["physical_lines"], loaded.stats["blank_lines"]) == (stats.physical_lines, stats.blank_lines) == (3000, 31)  # fmt: skip
    assert loaded.stats["checksum"] == stats.checksum
    assert split.filter(pl.col("problem").is_not_null()).height > 5
