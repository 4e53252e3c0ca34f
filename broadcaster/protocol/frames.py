"""Server-to-client WebSocket frames, serialized by websockets' own frame code.

Server frames are unmasked and uncompressed, so one serialization serves every subscriber.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode


def text_frame(payload: bytes) -> bytes:
    """The wire bytes of one unmasked text frame holding ``payload``."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
