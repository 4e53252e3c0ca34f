"""One contract for both twins of the idempotency store: LocalIdempotency (one process) and
RedisIdempotency (on each Redis mode: a real redis-server, Redis Cluster and Sentinel setup).
Claims go through ``submit``, as the server sends them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis

from broadcaster.cluster.idempotency import Idempotency, LocalIdempotency, RedisIdempotency
from broadcaster.protocol.requests import Answer, Claimed, ClaimKeys, Unavailable
from tests.api.redis_server import redis_server
from tests.redis_nodes import REDIS_MODES

APP, OTHER_APP = "1", "2"


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(params=["local", *REDIS_MODES])
def make_store(request) -> Callable[..., Idempotency]:
    """``make_store(window)``: a store of the parametrized twin; the Redis ones of a test share a
    key prefix of their own (the servers live for the whole session)."""
    if request.param == "local":
        return LocalIdempotency
    url = request.getfixturevalue(f"redis_{request.param}_url")
    prefix = f"test-{uuid.uuid4().hex}"
    return lambda window: RedisIdempotency(url, window, prefix=prefix)


async def claim(store: Idempotency, app_id: str, *keys: str | None,
                events: tuple[str, ...] = ()) -> Answer:
    """Claim ``keys``, for the events whose fingerprints are ``events`` (default: one event)."""
    answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    store.submit(ClaimKeys(app_id, keys, events or ("event",) * len(keys)), answered.set_result)
    return await asyncio.wait_for(answered, 10.0)


def run(stores: list[Idempotency], scenario: Callable[[], Awaitable[None]]) -> None:
    async def started() -> None:
        for store in stores:
            await store.start()
        try:
            await scenario()
        finally:
            for store in stores:
                await store.stop()

    asyncio.run(started())


def test_a_key_is_fresh_once_per_app_and_events_without_a_key_always_are(make_store):
    store = make_store(300)

    async def scenario():
        assert await claim(store, APP, "a", None, "b", "a") == Claimed((True, True, True, False))
        assert await claim(store, APP, "b", None, "c") == Claimed((False, True, True))
        assert await claim(store, OTHER_APP, "a") == Claimed((True,))

    run([store], scenario)


def test_a_key_reused_for_another_event_claims_nothing_of_its_request(make_store):
    """Issue 24: the API answers such a request 422, so none of its keys may be used up."""
    store = make_store(300)

    async def scenario():
        assert await claim(store, APP, "a", events=("one",)) == Claimed((True,))
        assert await claim(store, APP, "b", None, "a", events=("two", "", "other")) == \
            Claimed((False, False, False), ("a",))
        assert await claim(store, APP, "b", "a", events=("two", "one")) == \
            Claimed((True, False))  # "b" was not claimed by the refused request
        assert await claim(store, APP, "c", "c", events=("x", "y")) == \
            Claimed((False, False), ("c",))  # twice in one request, for two events
        assert await claim(store, APP, "c", "c", events=("x", "x")) == Claimed((True, False))
        assert await claim(store, OTHER_APP, "a", events=("other",)) == Claimed((True,))

    run([store], scenario)


def test_a_key_is_fresh_again_once_the_window_has_passed(make_store):
    store = make_store(1)

    async def scenario():
        assert await claim(store, APP, "k") == Claimed((True,))
        assert await claim(store, APP, "k") == Claimed((False,))
        deadline = asyncio.get_running_loop().time() + 10.0
        while (answer := await claim(store, APP, "k")) == Claimed((False,)):
            assert asyncio.get_running_loop().time() < deadline, "the key never expired"
            await asyncio.sleep(0.1)
        assert answer == Claimed((True,))

    run([store], scenario)


def test_the_local_twin_answers_before_submit_returns_and_forgets_the_oldest_past_its_bound():
    store = LocalIdempotency(300, max_keys=2)
    answers: list[Answer] = []
    for key in ("a", "b", "c", "b", "a"):
        store.submit(ClaimKeys(APP, (key,), ("event",)), answers.append)
    assert answers == [Claimed((True,))] * 3 + [Claimed((False,)), Claimed((True,))]
    assert store.evicted == 2  # "a" went to make room for "c", then "b" for "a" again


def test_redis_keys_are_shared_by_nodes_under_the_app_hash_tag_with_the_window_as_ttl(redis_url):
    redis.Redis.from_url(redis_url).flushall()
    first, second = RedisIdempotency(redis_url, 300), RedisIdempotency(redis_url, 300)

    async def scenario():
        assert await claim(first, APP, "order-1") == Claimed((True,))
        assert await claim(second, APP, "order-1") == Claimed((False,))

    run([first, second], scenario)
    ttl = redis.Redis.from_url(redis_url).ttl("resound:{1}:idem:order-1")
    assert 0 < ttl <= 300


def test_redis_unreachable_is_an_unavailable_answer_naming_it():
    with redis_server() as url:
        store = RedisIdempotency(url, 300, timeout=1.0)
    # the server is gone now

    async def scenario():
        answer = await claim(store, APP, "k")
        assert isinstance(answer, Unavailable)
        assert "unreachable" in answer.reason and "idempotency" in answer.reason

    run([store], scenario)
