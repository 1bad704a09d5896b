"""The SSE decoder against the WHATWG event-stream rules, fed in every way a network can split bytes."""

from __future__ import annotations

import pytest

from hybrid_router.sse import Event, SSEDecoder


def parse(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.finish()


def byte_by_byte(data: bytes) -> list[Event]:
    return parse(*(data[i : i + 1] for i in range(len(data))))


def test_one_event_is_dispatched_on_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: hello\n") == []
    assert decoder.feed(b"\n") == [Event(data="hello")]


def test_data_lines_join_with_newline() -> None:
    assert parse(b"data: a\ndata:b\ndata:  c\n\n") == [Event(data="a\nb\n c")]


def test_event_id_and_retry_fields() -> None:
    events = parse(b"event: ping\nid: 7\nretry: 2500\ndata: x\n\ndata: y\n\n")
    assert events == [Event(data="x", event="ping", id="7", retry=2500), Event(data="y", id="7")]


def test_event_type_resets_but_id_persists() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 1\nevent: a\ndata: x\n\ndata: y\n\nid\ndata: z\n\n")
    assert [(e.event, e.id) for e in events] == [("a", "1"), ("message", "1"), ("message", "")]
    assert decoder.last_event_id == ""


def test_id_with_nul_and_bad_retry_are_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 5\n\nid: a\x00b\nretry: 12x\ndata: q\n\n")
    assert events == [Event(data="q", id="5")]
    assert decoder.retry is None


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert parse(b": keep-alive\n:\nfoo: bar\ndata: x\n\n") == [Event(data="x")]


def test_field_without_colon_and_only_one_space_stripped() -> None:
    assert parse(b"data\n\n") == [Event(data="")]
    assert parse(b"data:no-space\n\n") == [Event(data="no-space")]
    assert parse(b"data:   three\n\n") == [Event(data="  three")]


def test_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: x\nid: 3\n\n") == []
    assert parse(b"\n\n\n") == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    data = b"event: e" + eol + b"data: 1" + eol + b"data: 2" + eol + eol + b"data: 3" + eol + eol
    assert parse(data) == [Event(data="1\n2", event="e"), Event(data="3")]
    assert byte_by_byte(data) == parse(data)


def test_mixed_line_endings() -> None:
    assert parse(b"data: a\rdata: b\r\ndata: c\n\r\n") == [Event(data="a\nb\nc")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # "\r" ends a chunk and "\n" starts the next: one line end, not an empty line between.
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [Event(data="a\nb")]


def test_lone_cr_at_chunk_end_then_text() -> None:
    assert parse(b"data: a\r", b"data: b\r\r") == [Event(data="a\nb")]


def test_utf8_character_split_at_every_byte() -> None:
    data = "data: héllo wörld 🎉 日本\n\n".encode()
    expected = [Event(data="héllo wörld 🎉 日本")]
    for cut in range(1, len(data)):
        assert parse(data[:cut], data[cut:]) == expected, cut
    assert byte_by_byte(data) == expected


def test_bom_at_start_is_dropped_even_when_split() -> None:
    data = b"\xef\xbb\xbfdata: x\n\n"
    assert parse(data) == [Event(data="x")]
    assert parse(data[:1], data[1:2], data[2:]) == [Event(data="x")]


def test_bom_later_is_data() -> None:
    assert parse(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [Event(data="a")]  # "\ufeffdata" is a field name
    assert parse(b"data: \xef\xbb\xbfb\n\n") == [Event(data="\ufeffb")]


def test_unterminated_event_is_discarded_at_the_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: whole\n\ndata: cut") == [Event(data="whole")]
    assert decoder.finish() == []
    assert decoder.discarded is True
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b\n") == []
    assert decoder.finish() == []
    assert decoder.discarded is True


def test_clean_end_is_not_discarded() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n: trailing comment\n")
    assert decoder.finish() == []
    assert decoder.discarded is False


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse(b"data: a\xffb\n\n") == [Event(data="a\ufffdb")]


ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)


def test_named_events_of_a_real_stream_any_split() -> None:
    whole = parse(ANTHROPIC_STREAM)
    assert [e.event for e in whole] == ["message_start", "ping", "content_block_delta", "message_stop"]
    assert whole[2].data.endswith('"text":"Hi"}}')
    for size in (1, 2, 3, 7, 64):
        chunks = [ANTHROPIC_STREAM[i : i + size] for i in range(0, len(ANTHROPIC_STREAM), size)]
        assert parse(*chunks) == whole
