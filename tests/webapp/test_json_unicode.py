"""JSON bodies holding lone UTF-16 surrogates are refused with a 400, on every JSON endpoint.

``json.loads`` turns ``"\\ud800"`` into a str that no codec can encode again; before the fix the
database driver failed on it and /api/login answered 500.
"""

from __future__ import annotations

import pytest

from webapp.web.jsonbodies import lone_surrogate_error

LONE = ['"\\ud800"', '"\\udfff"', '"x\\ud83d"', '"\\ude00x"']


def post_raw(client, path: str, body: str, headers: dict[str, str] | None = None):
    return client.post(path, data=body.encode(), headers=headers or {},
                       content_type="application/json")


@pytest.mark.parametrize("text", LONE)
def test_login_with_a_lone_surrogate_is_400(client, text):
    for body in (f'{{"email": {text}, "password": "password"}}',
                 f'{{"email": "alice@example.com", "password": {text}}}'):
        answer = post_raw(client, "/api/login", body)
        assert answer.status_code == 400, (body, answer.json)
        assert answer.json == {"error": "request body must be a JSON object"}


def test_utf8_encoded_surrogate_bytes_are_400(client):
    answer = client.post("/api/login", content_type="application/json",
                         data=b'{"email": "\xed\xa0\x80", "password": "password"}')
    assert answer.status_code == 400, answer.json


def test_every_json_endpoint_refuses_lone_surrogates(client, admin, alice):
    cases = [
        ("/api/orders", '{"items": [{"product_id": 1, "quantity": 1, "\\ud800": 1}]}', alice),
        ("/api/orders/6/transition", '{"status": "paid", "notes": "\\udc00"}', admin),
    ]
    for path, body, headers in cases:
        answer = post_raw(client, path, body, headers)
        assert answer.status_code == 400, (path, answer.json)


def test_a_surrogate_pair_is_valid_unicode_and_accepted(client, admin):
    answer = post_raw(client, "/api/orders/6/transition",
                      '{"status": "paid", "notes": "shipped \\ud83d\\ude00"}', admin)
    assert answer.status_code == 200, answer.json
    assert answer.json["order"]["history"][-1]["notes"] == "shipped \U0001f600"


def test_lone_surrogate_error_looks_inside_keys_lists_and_deep_nesting():
    assert lone_surrogate_error({"a": ["b", {"c": "ok \U0001f600"}]}) is None
    assert lone_surrogate_error({"\ud800": 1}) is not None
    assert lone_surrogate_error([1, [2, ["\udfff"]]]) is not None
    deep: list = ["\ud800"]
    for _ in range(5000):
        deep = [deep]
    assert lone_surrogate_error(deep) is not None
