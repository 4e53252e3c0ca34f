"""The Redis webhook queue through a Redis outage, in process on a real redis-server stopped and
started again on the same port: events wait and are tried again within their budget, and are
queued once Redis is back; past the budget they are dropped, counted, and logged once per run."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from broadcaster.webhooks.base import WebhookEvent
from broadcaster.webhooks.redis_queue import RedisWebhookQueue
from tests.api.redis_server import redis_server
from tests.cluster.buses import wait_for
from tests.servers import free_port

APP = "1"
BACK = 15.0  # seconds for the queue to try again after Redis is back (backoff: at most 2 s)


def cache_misses(count: int, prefix: str = "cache-") -> list[WebhookEvent]:
    now_ms = int(time.time() * 1000)
    return [WebhookEvent(APP, "cache_miss", f"{prefix}{i}", now_ms) for i in range(count)]


async def started(url: str, retry_for: float) -> tuple[RedisWebhookQueue, asyncio.Task[None]]:
    queue = RedisWebhookQueue(url, "node-a", nodes_key="resound:nodes",
                              members_key=lambda app, channel: f"resound:{{{app}:{channel}}}:m",
                              retry_for=retry_for)
    queue.want(APP, {"cache_miss"})
    await queue.start()
    return queue, asyncio.create_task(queue.run())


async def stopped(queue: RedisWebhookQueue, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await queue.stop()


def test_events_put_while_redis_is_down_are_queued_once_it_is_back() -> None:
    port = free_port()

    async def scenario() -> tuple[RedisWebhookQueue, list[str]]:
        with redis_server(port) as url:
            queue, task = await started(url, retry_for=300.0)
        for event in cache_misses(5):
            queue.put(event)
        await wait_for(lambda: queue.outage.retries >= 2, what="tries failing while Redis is down")
        assert queue.queued == 0 and queue.unsettled() == 5
        with redis_server(port):
            await wait_for(lambda: queue.queued == 5, BACK, "the events queued")
            popped = await queue.pop(10, wait=False)
        await stopped(queue, task)
        return queue, [event.channel for event in popped]

    queue, channels = asyncio.run(scenario())
    assert sorted(channels) == [f"cache-{i}" for i in range(5)]
    assert queue.dropped == 0


def test_past_the_budget_events_are_dropped_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    caplog.set_level(logging.WARNING, logger="broadcaster.webhooks")

    async def scenario() -> RedisWebhookQueue:
        with redis_server(port) as url:
            queue, task = await started(url, retry_for=1.0)
        for event in cache_misses(5):
            queue.put(event)
        await wait_for(lambda: queue.dropped == 5, BACK, "the events dropped after 1 s")
        assert queue.unsettled() == 0
        with redis_server(port):
            queue.put(cache_misses(1, "after-")[0])
            await wait_for(lambda: queue.queued == 1, BACK, "the next event queued")
        await stopped(queue, task)
        return queue

    queue = asyncio.run(scenario())
    assert queue.dropped == 5
    lines = [record.getMessage() for record in caplog.records]
    assert len([line for line in lines if "are being dropped" in line]) == 1, lines
    assert len([line for line in lines if line.startswith("5 webhook events were dropped")]) == 1
    assert len([line for line in lines if "cannot reach Redis at" in line]) == 1, lines
