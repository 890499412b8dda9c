"""The SSE framer: events as Google (CRLF) and others (LF) end them, however the bytes are cut."""

from __future__ import annotations

import pytest

from bot.providers.sse import SseFramer

GOOGLE = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'


def framed(stream: bytes, step: int) -> list[bytes]:
    framer, out = SseFramer(), []
    for i in range(0, len(stream), step):
        out += [bytes(d) for d in framer.feed(stream[i : i + step])]
    last = framer.close()
    return out + ([bytes(last)] if last is not None else [])


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 1000])
def test_events_come_whole_whatever_the_chunk_size(step: int) -> None:
    assert framed(GOOGLE, step) == [b'{"a":1}', b'{"b":2}']


@pytest.mark.parametrize("end", [b"\n\n", b"\r\r", b"\r\n\r\n", b"\r\n\n"])
def test_each_line_end_style_ends_an_event(end: bytes) -> None:
    assert framed(b"data: x" + end + b"data: y" + end, 1) == [b"x", b"y"]


def test_several_data_lines_join_and_other_fields_and_comments_are_skipped() -> None:
    stream = b": keep-alive\n\nevent: chunk\nid: 7\ndata: one\ndata:two\n\nretry: 5\n\n"
    assert framed(stream, 4) == [b"one\ntwo"]


def test_a_last_event_without_its_blank_line_is_still_read() -> None:
    assert framed(b"data: a\r\n\r\ndata: tail", 3) == [b"a", b"tail"]
    assert framed(b"data: a\r\n\r\n\r\n", 3) == [b"a"]


def test_a_field_that_only_starts_with_data_is_not_data() -> None:
    assert framed(b"database: x\n\ndata\n\n", 2) == [b""]


def test_a_big_event_is_held_once_and_let_go() -> None:
    framer = SseFramer()
    payload = b"A" * 3_000_000
    stream = b"data: " + payload + b"\r\n\r\ndata: next"
    events = []
    for i in range(0, len(stream), 65_536):
        events += framer.feed(stream[i : i + 65_536])
        assert framer.pending <= len(stream)  # never a second copy of what is buffered
    assert [len(e) for e in events] == [len(payload)] and events[0] == payload
    assert framer.pending == len(b"data: next")
