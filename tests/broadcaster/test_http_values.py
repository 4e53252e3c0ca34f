"""Serializing HttpResponse values (pure, fast)."""

from broadcaster.api.http import HttpResponse, json_response, serialize_response


def test_response_bytes_carry_type_length_and_extra_headers():
    response = json_response(413, {"error": "too big"})
    response.headers.append(("Retry-After", "5"))
    assert serialize_response(response, keep_alive=False) == (
        b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
        b"Content-Length: 19\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
        b'{"error":"too big"}'
    )


def test_head_only_and_unknown_status():
    response = HttpResponse(599, b"abc", "text/plain")
    data = serialize_response(response, keep_alive=True, head_only=True)
    assert data == b"HTTP/1.1 599 Unknown\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
