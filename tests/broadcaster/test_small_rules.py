"""Origins and the client-event token bucket (pure, fast)."""

import pytest

from broadcaster.protocol.origins import origin_error
from broadcaster.protocol.ratelimit import TokenBucket


@pytest.mark.parametrize("origin, patterns, allowed", [
    ("https://anything.test", ("*",), True),
    (None, ("*",), True),
    ("https://app.example.com", ("*.example.com",), True),
    ("https://a.b.example.com:8443", ("*.example.com",), True),
    ("https://example.com", ("*.example.com",), False),
    ("https://evil.com", ("*.example.com", "localhost"), False),
    ("http://localhost:5173", ("*.example.com", "localhost"), True),
    ("http://LOCALHOST", ("localhost",), True),
    (None, ("localhost",), False),
    ("null", ("localhost",), False),
    ("http://[bad", ("localhost",), False),
])
def test_origin_patterns_match_the_host(origin, patterns, allowed):
    assert (origin_error(origin, patterns) is None) is allowed


@pytest.mark.parametrize("origin, reason", [
    (None, "this client sent no Origin header; with REVERB_ALLOWED_ORIGINS set, only browsers "
           "on those hosts may connect ('*' allows any client)"),
    ("", "this client sent no Origin header; "),
    ("https://evil.test", "origin https://evil.test is not allowed; add its host to "
                          "REVERB_ALLOWED_ORIGINS"),
])
def test_a_refused_origin_is_explained_in_a_sentence(origin, reason):
    refused = origin_error(origin, ("localhost",))
    assert refused.startswith(reason) and "None" not in refused and "'" not in refused[:40]


def test_bucket_allows_rate_per_second_then_refills():
    bucket = TokenBucket(10, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(10))
    assert not bucket.allow(0.0)
    assert not bucket.allow(0.05)
    assert bucket.allow(0.11)
    assert not bucket.allow(0.11)
    assert sum(bucket.allow(5.0) for _ in range(20)) == 10
