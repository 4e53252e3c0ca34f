"""Any JSON (or garbage) sent to the API gets a 4xx with a JSON reason, never a 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Bodies shaped like the real ones, with any values, so the checks past "is it an object" run.
order_bodies = st.fixed_dictionaries({"items": st.lists(st.fixed_dictionaries({
    "product_id": json_values, "quantity": json_values}), max_size=3) | json_values})
transition_bodies = st.fixed_dictionaries({"status": json_values, "notes": json_values})
login_bodies = st.fixed_dictionaries({"email": json_values, "password": json_values})
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_clean_refusal_or_success(answer) -> None:
    assert answer.status_code < 500, answer.get_data(as_text=True)
    if answer.status_code >= 400:
        assert isinstance(answer.json["error"], str) and answer.json["error"]


@FUZZ
@given(body=json_values | order_bodies)
def test_orders_endpoint_never_crashes(client, alice, body):
    assert_clean_refusal_or_success(client.post("/api/orders", headers=alice, json=body))


@FUZZ
@given(body=json_values | transition_bodies)
def test_transition_endpoint_never_crashes(client, admin, body):
    assert_clean_refusal_or_success(
        client.post("/api/orders/5/transition", headers=admin, json=body))


@FUZZ
@given(body=json_values | login_bodies)
def test_login_never_crashes(client, body):
    assert_clean_refusal_or_success(client.post("/api/login", json=body))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_raw_bytes_never_crash(client, admin, raw):
    for path in ("/api/orders", "/api/orders/5/transition", "/broadcasting/auth"):
        assert_clean_refusal_or_success(client.post(path, headers=admin, data=raw,
                                                    content_type="application/json"))


@FUZZ
@given(socket_id=st.text(max_size=30), channel=st.text(max_size=60))
def test_broadcasting_auth_never_crashes(client, admin, socket_id, channel):
    answer = client.post("/broadcasting/auth", headers=admin,
                         data={"socket_id": socket_id, "channel_name": channel})
    assert_clean_refusal_or_success(answer)
    if answer.status_code == 200:
        assert json.loads(answer.get_data())["auth"].startswith("test-key:")
