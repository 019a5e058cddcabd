"""Entries out of a batch's bytes and back: byte-exact for every encoding, line end, gzip and
layout a batch may have, with only the replaced entries changed."""

from __future__ import annotations

import codecs
import gzip
import io
import json

import pytest

from import_pipeline.repair import BatchForm, Span, json_text, texts, write_patched
from import_pipeline.repair.entries import entry_of
from import_pipeline.repair.eppi import locate

RIS = (
    "TY  - JOUR\nTI  - First\nER  - \n\n"
    "TY  - JOUR\nTI  - Second\nAB  - two\n  lines\nER  - \n\n\n"
    "TY  - JOUR\nTI  - Third\nER  - \n"
)
#: (start, next start) of the three RIS entries above, as their results give them.
RIS_STARTS = [Span(1, 5), Span(5, 12), Span(12, None)]


def _encoded(text: str, codec: str, bom: bytes = b"") -> bytes:
    return bom + text.encode(codec)


LAYOUTS = {
    "utf-8": (b"", "utf-8", None),
    "utf-8 with BOM": (codecs.BOM_UTF8, "utf-8", None),
    "utf-16-le with BOM": (codecs.BOM_UTF16_LE, "utf-16-le", None),
    "utf-16-be with BOM": (codecs.BOM_UTF16_BE, "utf-16-be", None),
    "latin-1 declared": (b"", "latin-1", "latin-1"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_an_export_entry_comes_out_and_goes_back_byte_exact(layout, line_end, gzipped) -> None:
    bom, codec, declared = LAYOUTS[layout]
    text = RIS.replace("Second", "Sécond").replace("\n", line_end)
    original = _encoded(text, codec, bom)
    stored = gzip.compress(original) if gzipped else original
    form = BatchForm("a.ris.gz" if gzipped else "a.ris", "ris", declared)
    out = dict(texts(io.BytesIO(stored), form, RIS_STARTS))
    second = line_end.join(["TY  - JOUR", "TI  - Sécond", "AB  - two", "  lines", "ER  - "])
    assert out == {1: out[1], 5: second, 12: out[12]}
    assert out[12] == line_end.join(["TY  - JOUR", "TI  - Third", "ER  - "])
    # Unchanged texts write the same bytes back; a changed one changes only its lines.
    assert _patched(stored, form, {span: out[span.start] for span in RIS_STARTS}) == original
    fixed = _patched(stored, form, {RIS_STARTS[1]: "TY  - JOUR" + line_end + "TI  - Fixed"})
    expected = text.replace(second, "TY  - JOUR" + line_end + "TI  - Fixed")
    assert fixed == _encoded(expected, codec, bom)


def _patched(stored: bytes, form: BatchForm, replacements: dict[Span, str]) -> bytes:
    out = io.BytesIO()
    write_patched(io.BytesIO(stored), form, replacements, out)
    data = out.getvalue()
    return gzip.decompress(data) if form.name.endswith(".gz") else data


def test_bytes_no_encoding_takes_come_out_as_escapes_and_go_back_as_the_bytes() -> None:
    good = b'{"identifiers": []}'
    bad = b'{"title": "caf\xe9 \xff"}'
    batch = good + b"\n" + bad + b"\r\n" + good + b"\n"
    form = BatchForm("a.jsonl", "jsonl")
    spans = [Span(1, 2), Span(2, 3), Span(3, 4)]
    out = dict(texts(io.BytesIO(batch), form, spans))
    assert out[2] == '{"title": "caf\udce9 \udcff"}'
    printed = json_text(json.dumps({"text": out[2]}, ensure_ascii=False))
    assert printed.encode("utf-8") == b'{"text": "{\\"title\\": \\"caf\\udce9 \\udcff\\"}"}'
    assert json.loads(printed)["text"] == out[2]  # read back as it came out
    assert _patched(batch, form, {Span(2, 3): json.loads(printed)["text"]}) == batch
    fixed = _patched(batch, form, {Span(2, 3): '{"title": "café"}'})
    assert fixed == good + b"\n" + '{"title": "café"}'.encode() + b"\r\n" + good + b"\n"


def test_a_jsonl_entry_is_its_line_and_the_last_line_may_have_no_end() -> None:
    batch = b"one\n\ntwo\nthree"
    form = BatchForm("a.jsonl", "jsonl")
    spans = [Span(1, 2), Span(3, 4), Span(4, 5)]
    assert dict(texts(io.BytesIO(batch), form, spans)) == {1: "one", 3: "two", 4: "three"}
    assert _patched(batch, form, {Span(4, 5): "THREE", Span(1, 2): "ONE"}) == b"ONE\n\ntwo\nTHREE"


def test_a_bom_is_part_of_a_jsonl_first_line_as_the_import_reads_it() -> None:
    batch = codecs.BOM_UTF8 + b'{"a": 1}\n'
    form = BatchForm("a.jsonl", "jsonl")
    assert dict(texts(io.BytesIO(batch), form, [Span(1, 2)])) == {1: '\ufeff{"a": 1}'}


def test_blank_lines_after_an_entry_are_not_its_text_but_stay_in_the_file() -> None:
    entry = entry_of(Span(1, 6), ["a\n", "b\r\n", "\n", "  \r\n", "\n"])
    assert (entry.text, entry.end, entry.tail) == ("a\nb", "\r\n", "\n  \r\n\n")
    assert entry_of(Span(1, 2), ["\n"]).text == ""


def test_a_lone_carriage_return_ends_no_line() -> None:
    batch = b"x\ry\nz\n"
    form = BatchForm("a.jsonl", "jsonl")
    assert dict(texts(io.BytesIO(batch), form, [Span(1, 2), Span(2, 3)])) == {1: "x\ry", 2: "z"}


def test_a_file_shorter_than_a_span_gives_what_it_holds() -> None:
    form = BatchForm("a.jsonl", "jsonl")
    assert dict(texts(io.BytesIO(b"one\n"), form, [Span(1, 2), Span(7, 8)])) == {1: "one"}


EPPI_ONE_LINE = (
    '{"CodeSets": [], "References": [{"ItemId": 1, "Title": "A"}, '
    '{"ItemId": 2, "Title": "B\\u00e9"}, {"ItemId": 3, "Title": "C"}]}'
)


def test_the_references_of_a_one_line_eppi_report_are_numbered_as_the_import_numbers_them() -> None:
    found = locate(EPPI_ONE_LINE)
    assert [(n, found[n].text) for n in sorted(found)] == [
        (1, '{"ItemId": 1, "Title": "A"}'),
        (2, '{"ItemId": 2, "Title": "B\\u00e9"}'),
        (3, '{"ItemId": 3, "Title": "C"}'),
    ]
    form = BatchForm("r.json", "eppi_json")
    batch = EPPI_ONE_LINE.encode()
    assert dict(texts(io.BytesIO(batch), form, [Span(2, None)])) == {2: found[2].text}
    fixed = _patched(batch, form, {Span(2, None): '{"ItemId": 2, "Title": "Fixed"}'})
    assert fixed == EPPI_ONE_LINE.replace('"B\\u00e9"', '"Fixed"').encode()


def test_an_indented_eppi_report_with_crlf_keeps_every_other_byte() -> None:
    report = json.dumps(json.loads(EPPI_ONE_LINE), indent=2).replace("\n", "\r\n")
    found = locate(report)
    assert len(found) == 3 and all(x.start >= 0 for x in found.values())
    number = sorted(found)[1]
    form = BatchForm("r.json", "eppi_json")
    fixed = _patched(report.encode(), form, {Span(number, None): '{"ItemId": 2}'})
    assert (
        fixed.decode()
        == report[: found[number].start] + '{"ItemId": 2}' + report[found[number].end :]
    )
