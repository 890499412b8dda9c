"""Server-sent events, framed as bytes arrive: the `data` of each event, one event at a time.

Pure (no I/O): `feed` takes whatever chunk the socket gave and returns the events it completed,
so a 20 MB event (a 4K image in one SSE event) is held once, as it grows, and let go as soon as
it is handed on. Framing follows the WHATWG EventSource rules the Gemini API's `alt=sse`
answers keep: events end at a blank line (CRLF, LF or CR line ends), `data:` lines of one event
are joined with LF, comments (`:`) and other fields (`event`, `id`, `retry`) are skipped.
"""

from __future__ import annotations

import re

# The end of an event: a line end followed by an empty line, in any of the three line-end styles.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n")
_LINE_END = re.compile(rb"\r\n|\n|\r")
_LONGEST_END = 4  # bytes an event end can span: a new search starts this far back


class SseFramer:
    """Splits an SSE byte stream into the data of its events."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no event end

    @property
    def pending(self) -> int:
        """Bytes of an event still being received."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytearray]:
        """The data of every event `chunk` completes (events without data are skipped)."""
        self._buf += chunk
        events: list[bytearray] = []
        while True:
            found = _EVENT_END.search(self._buf, max(0, self._scanned - _LONGEST_END))
            if found is None:
                self._scanned = len(self._buf)
                return events
            # The event keeps the buffer itself (cut at its end); only what follows is copied,
            # so a big event is never held twice.
            event, self._buf = self._buf, bytearray(self._buf[found.end() :])
            del event[found.start() :]
            self._scanned = 0
            data = _data_of(event)
            if data is not None:
                events.append(data)

    def close(self) -> bytearray | None:
        """The data of a last event the stream ended without its blank line, if any."""
        rest, self._buf, self._scanned = self._buf, bytearray(), 0
        return _data_of(rest) if rest.strip() else None


def _data_of(event: bytearray) -> bytearray | None:
    """The joined `data` lines of one event's text, None when it has none."""
    lines = _LINE_END.split(event)
    if len(lines) == 1:  # the common case (Gemini sends one data line): no copy of a big line
        return _field_value(event) if event.startswith(b"data") else None
    values = [_field_value(bytearray(line)) for line in lines if line.startswith(b"data")]
    found = [v for v in values if v is not None]
    return bytearray(b"\n".join(found)) if found else None


def _field_value(line: bytearray) -> bytearray | None:
    """The value of a `data` line (`data:value`, one space after the colon dropped)."""
    if line == b"data":
        return bytearray()
    if not line.startswith(b"data:"):
        return None  # a field named e.g. `database`: not ours
    del line[:5]
    if line.startswith(b" "):
        del line[:1]
    return line
