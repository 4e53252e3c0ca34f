"""Issue 23, "Limits across the cluster": ``api_rate_limit`` holds for the whole cluster.

Two broadcaster processes on one real redis-server, an app limited to ``RATE`` calls a second
(bursts of as many): a burst of calls split across both nodes gets at most what one bucket
allows in the time the burst took, the rest 429. The bound is counted from the burst's own
duration, measured around it, so a slow machine only loosens it by the calls it really earned:
before the limit was shared, each node allowed its own bucket, twice the bound whatever the
speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from broadcaster.cluster.api_limits import ApiLimits, LocalApiLimits, RedisApiLimits
from broadcaster.protocol.requests import Answer, ApiCallCounted, CountApiCall, Unavailable
from tests.api.redis_server import redis_server
from tests.api.wire import signed_request
from tests.servers import broadcaster_pair, start_broadcaster

RATE = 5  # RESOUND_APP_API_RATE_LIMIT: calls per second, and the burst
CALLS = 40  # 20 per node: each node alone would allow its burst and more


def channels(server) -> int:
    status, answer = signed_request(server, "GET", f"/apps/{server.app_id}/channels")
    assert status in (200, 429), (status, answer)
    return status


@pytest.fixture
def nodes():
    with redis_server() as url, broadcaster_pair({
            "REVERB_SCALING_ENABLED": "true", "REDIS_URL": url,
            "RESOUND_APP_API_RATE_LIMIT": str(RATE)}) as pair:
        yield pair


def test_the_api_rate_limit_holds_for_the_cluster_not_per_node(nodes):
    started = time.monotonic()
    statuses = [channels(nodes[i % 2]) for i in range(CALLS)]
    took = time.monotonic() - started
    allowed = statuses.count(200)
    # One bucket: RATE at first, then RATE a second.
    assert RATE <= allowed <= RATE + RATE * took, (allowed, took)
    assert statuses.count(429) == CALLS - allowed


def test_redis_unreachable_is_a_503_naming_the_limit():
    with redis_server() as url:
        server = start_broadcaster({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": url,
                                    "RESOUND_APP_API_RATE_LIMIT": str(RATE)})
    try:  # the redis-server is gone now
        status, answer = signed_request(server, "GET", f"/apps/{server.app_id}/channels")
        assert status == 503
        assert "unreachable" in answer["error"] and "API rate limit" in answer["error"], answer
    finally:
        server.stop()


# --- the contract both twins keep (the server asks them through ``submit``) ------------------

@pytest.fixture(params=["local", "redis"])
def make_limits(request) -> Callable[[], ApiLimits]:
    if request.param == "local":
        return LocalApiLimits
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushall()
    return lambda: RedisApiLimits(url)


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


async def count(limits: ApiLimits, app_id: str, rate: float = RATE) -> Answer:
    answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    limits.submit(CountApiCall(app_id, rate), answered.set_result)
    return await asyncio.wait_for(answered, 10.0)


def run(limits: ApiLimits, scenario: Callable[[], Awaitable[None]]) -> None:
    async def started() -> None:
        await limits.start()
        try:
            await scenario()
        finally:
            await limits.stop()

    asyncio.run(started())


def test_a_burst_of_rate_calls_then_a_refusal_saying_when_to_retry_per_app(make_limits):
    limits = make_limits()

    async def scenario():
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = [await count(limits, "1") for _ in range(RATE * 2)]
        took = loop.time() - started
        allowed = [answer for answer in answers if answer.allowed]
        assert answers[:RATE] == [ApiCallCounted(True)] * RATE
        assert len(allowed) <= RATE + RATE * took
        refused = next(answer for answer in answers if not answer.allowed)
        assert 0 < refused.retry_after <= 1 / RATE
        assert await count(limits, "2") == ApiCallCounted(True)  # another app's own budget
        deadline = loop.time() + 10.0
        while not (await count(limits, "1")).allowed:  # a token comes back
            assert loop.time() < deadline, "the bucket never refilled"
            await asyncio.sleep(refused.retry_after)

    run(limits, scenario)


def test_redis_unreachable_is_an_unavailable_answer_naming_it():
    with redis_server() as url:
        limits = RedisApiLimits(url, timeout=1.0)

    async def scenario():
        answer = await count(limits, "1")
        assert isinstance(answer, Unavailable)
        assert "unreachable" in answer.reason and "API rate limit" in answer.reason

    run(limits, scenario)
