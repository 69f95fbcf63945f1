#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_h2.c into tests/fuzz/corpus/fuzz_h2/.

Each seed is what fuzz_h2 reads: an options byte, a piece-size byte, then
HTTP/2 frames as a client sends them after the preface (which the harness
writes itself). Frames come from hyperframe, header blocks from hpack.
Run: /usr/bin/python3 tests/fuzz/make_h2_corpus.py"""
import os

from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

# Option bits, as in fuzz_h2.c.
SMALL, HALF_CLOSE, TIMERS, JSON, BIG = 1, 2, 4, 8, 16
UP_LENGTH, UP_CHUNKED, UP_CLOSE, UP_SILENT = 0 << 5, 1 << 5, 2 << 5, 3 << 5

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_h2")


def request(method, path, authority="example.test", extra=()):
    return [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", authority)] + list(extra)


class Conn:
    """One client connection: its HPACK state and the frames so far."""

    def __init__(self, settings=None):
        self.enc = Encoder()
        self.frames = [SettingsFrame(0, settings or {})]

    def headers(self, sid, fields, end_stream=True, split=0):
        block = self.enc.encode(fields)
        if split == 0:
            flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
            self.frames.append(HeadersFrame(sid, block, flags=flags))
            return self
        # HEADERS then CONTINUATION frames of `split` bytes each.
        first, rest = block[:split], block[split:]
        self.frames.append(HeadersFrame(sid, first, flags=["END_STREAM"] if end_stream else []))
        while rest:
            part, rest = rest[:split], rest[split:]
            self.frames.append(ContinuationFrame(sid, part, flags=[] if rest else ["END_HEADERS"]))
        return self

    def add(self, frame):
        self.frames.append(frame)
        return self

    def bytes(self, options=0, piece=0):
        return bytes([options, piece]) + b"".join(f.serialize() for f in self.frames)


def seeds():
    yield "get_local", Conn().headers(1, request("GET", "/local")).bytes()
    yield "get_404_head_204_502", (
        Conn()
        .headers(1, request("GET", "/nope"))
        .headers(3, request("HEAD", "/empty"))
        .headers(5, request("GET", "/down/x"))
        .headers(7, request("GET", "/h/1", authority="a.test"))
        .bytes(JSON))
    yield "post_up_length", (
        Conn()
        .headers(1, request("POST", "/up/items", extra=[("content-length", "5"),
                                                          ("x-drop", "1")]), end_stream=False)
        .add(DataFrame(1, b"hello", flags=["END_STREAM"]))
        .bytes(UP_LENGTH))
    yield "post_up_chunked_big_split", (
        Conn()
        .headers(1, request("POST", "/up/upload"), end_stream=False)
        .add(DataFrame(1, b"a" * 3000))
        .add(DataFrame(1, b"b" * 100, flags=["END_STREAM"]))
        .bytes(UP_CHUNKED | BIG, piece=7))
    # Regression: the response head was parsed before anything was read from
    # the upstream (null buffer, UBSan), growing a 40 KiB malloc'd buffer.
    yield "regress_head_before_upstream_read", (
        Conn().headers(1, request("GET", "/up/first")).bytes(UP_LENGTH))
    yield "get_up_close", Conn().headers(1, request("GET", "/up/c")).bytes(UP_CLOSE | BIG)
    yield "get_up_silent_timers", (
        Conn().headers(1, request("GET", "/up/slow")).bytes(UP_SILENT | TIMERS))
    yield "continuation_cookies", (
        Conn()
        .headers(1, request("GET", "/local", extra=[("cookie", "a=1"), ("cookie", "b=2"),
                                                    ("host", "other.test"),
                                                    ("user-agent", "fuzz/" + "x" * 40)]),
                 split=16)
        .bytes())
    yield "ping", (
        Conn()
        .add(PingFrame(0, b"12345678"))
        .add(PingFrame(0, b"abcdefgh", flags=["ACK"]))
        .headers(1, request("GET", "/local"))
        .bytes(HALF_CLOSE))
    yield "rst_after_headers", (
        Conn()
        .headers(1, request("GET", "/up/r"), end_stream=False)
        .add(RstStreamFrame(1, 8))
        .headers(3, request("POST", "/down/r"), end_stream=False)
        .add(RstStreamFrame(3, 0))
        .bytes(UP_SILENT))
    yield "settings_window_priority", (
        Conn({SettingsFrame.HEADER_TABLE_SIZE: 0, SettingsFrame.INITIAL_WINDOW_SIZE: 100,
              SettingsFrame.MAX_FRAME_SIZE: 16384, SettingsFrame.ENABLE_PUSH: 0})
        .add(SettingsFrame(0, flags=["ACK"]))
        .add(WindowUpdateFrame(0, 1 << 20))
        .add(PriorityFrame(1, depends_on=0, stream_weight=15))
        .headers(1, request("GET", "/up/w"))
        .add(WindowUpdateFrame(1, 1000))
        .bytes(UP_LENGTH | BIG))
    yield "small_limits_431", (
        Conn()
        .headers(1, request("GET", "/local", extra=[("x-big", "v" * 1200)]))
        .headers(3, request("GET", "/local", extra=[("x-%d" % i, "v") for i in range(12)]))
        .bytes(SMALL))
    yield "small_limits_floods", (
        Conn()
        .add(PingFrame(0, b"pingpong")).add(PingFrame(0, b"pingpong"))
        .add(PingFrame(0, b"pingpong")).add(PingFrame(0, b"pingpong"))
        .headers(1, request("GET", "/local"), split=8)
        .headers(3, request("GET", "/up/a"), end_stream=False).add(RstStreamFrame(3, 8))
        .headers(5, request("GET", "/up/b"), end_stream=False).add(RstStreamFrame(5, 8))
        .headers(7, request("GET", "/up/c"), end_stream=False).add(RstStreamFrame(7, 8))
        .bytes(SMALL))
    yield "connect_protocol_goaway", (
        Conn()
        .headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                     (":path", "/local"), (":authority", "example.test")])
        .add(GoAwayFrame(0, last_stream_id=1, error_code=0))
        .bytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
