"""Presence in Redis: rosters decided by Lua scripts, answered in pub/sub order.

Presence lives in three hashes per channel, under a ``{app:channel}`` hash tag (one Redis Cluster
slot): ``members`` (user id -> user info JSON), ``sockets`` ("<node>|<socket id>" -> user id) and
``usersockets`` (user id -> how many sockets). ``lua/join_presence.lua`` and
``lua/leave_presence.lua`` make the first- and last-socket decisions and SPUBLISH the member
events on the channel's stream atomically with them; :class:`~broadcaster.cluster.local.LocalState`
is their Python reading. A join's answer is given at its marker on the same stream, so it keeps
its place among the member events. Signed-in users (watchlist events) are the roster of the
pseudo-channel ``#online`` (:func:`online_join`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from shared.payloads import dumps, loads

from ..protocol.publication import Publication
from ..protocol.requests import (
    Answer,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Left,
    SignIn,
    SignOut,
    Unavailable,
    Watched,
)
from ..protocol.watchlist import ONLINE_ROSTER, status_publication
from .base import Reply
from .redis_bus import (
    MARKER,
    encode_publication,
)
from .redis_state_base import NO_CAP, Failure, RedisStateBase


def member_removed(app_id: str, channel: str, user_id: str) -> Publication:
    """The ``pusher_internal:member_removed`` publication for ``user_id`` leaving ``channel``;
    on the online roster, the watchlist's ``offline``."""
    if channel == ONLINE_ROSTER:
        return status_publication(app_id, user_id, online=False)
    return Publication(app_id, (channel,), "pusher_internal:member_removed",
                       dumps({"user_id": user_id}))


def online_join(request: SignIn) -> JoinPresence:
    """A sign-in as a join of the app's online roster (:data:`ONLINE_ROSTER`): the presence
    scripts decide first and last sockets, the registry and reaper clean up after dead nodes."""
    return JoinPresence(request.app_id, ONLINE_ROSTER, request.socket_id, request.user_id, None,
                        NO_CAP, request.online, roster_of=request.watchlist)


def watched(answer: Answer) -> Answer:
    """A sign-in's answer from its online-roster join's."""
    return Watched(tuple(answer.members)) if isinstance(answer, Joined) else answer



class RedisPresence(RedisStateBase):
    """Joins and leaves of presence channels and of the online roster."""

    # --- presence ------------------------------------------------------------------------

    def _on_marker(self, marker: bytes) -> Awaitable[None] | None:
        """A join's place among its channel's events, from the bus's reader: the answer goes
        to the session now, before the reader delivers the channel's next event. Returns what
        the reader must await first when the script's own reply is still on its way."""
        pending = self._answers.pop(marker, None)
        if pending is None:
            return None  # another node's join, or one given up
        return pending.reached()

    async def _join_script(self, client: Any, request: JoinPresence, cap: int,
                           marker: bytes) -> Any:
        """Run join_presence.lua; first record the channel in the node's registry, so that the
        reaper finds the socket if this node dies."""
        channel = (request.app_id, request.channel)
        if channel not in self._registered:
            await client.sadd(self._node_key(self.incarnation, "presence"), "\0".join(channel))
            self._registered.add(channel)
        roster_of = [] if request.roster_of is None else [dumps(request.roster_of)]
        return await self._scripts["join_presence"](
            keys=self._presence_keys(*channel),
            args=[f"{self.incarnation}|{request.socket_id}", request.user_id,
                  dumps(request.user_info), cap, self._stream(*channel),
                  encode_publication(request.added), marker, *roster_of],
            client=client)

    async def _leave_script(self, client: Any, request: LeavePresence, field: str) -> Any:
        return await self._scripts["leave_presence"](
            keys=self._presence_keys(request.app_id, request.channel),
            args=[field, request.user_id, self._stream(request.app_id, request.channel),
                  encode_publication(request.removed)],
            client=client)

    async def join_presence(self, request: JoinPresence) -> Joined | Full | Unavailable:
        answers: list[Joined | Full | Unavailable] = []
        await self._join(request, answers.append)
        return answers[0]

    async def sign_in(self, request: SignIn) -> Watched | Unavailable:
        answers: list[Answer] = []
        await self._join(online_join(request), answers.append)
        return watched(answers[0])

    async def sign_out(self, request: SignOut) -> Left | Unavailable:
        return await self.leave_presence(LeavePresence(
            request.app_id, ONLINE_ROSTER, request.socket_id, request.user_id, request.offline))

    async def _join(self, request: JoinPresence, reply: Reply) -> None:
        """Run join_presence.lua and call ``reply`` once with the answer. The node hears the
        channel first; a :class:`Joined` is given from the bus's reader at the script's marker,
        in pub/sub order: the member events before the decision are delivered before it, and
        those after, after it."""
        if self._redis is None:
            reply(Unavailable("cluster state is not started; start the server first"))
            return
        app_id, channel = request.app_id, request.channel
        self.bus.hold(app_id, channel)  # released once answered (the session holds it then)
        try:
            heard = await self.bus.heard(app_id, channel)
            if isinstance(heard, Unavailable):
                reply(heard)
                return
            try:
                await self._registered_since_reconnect()
            except Failure as exc:
                reply(self._unavailable(exc))
                return
            await self._run_join(request, reply)
        finally:
            self.bus.release(app_id, channel)

    async def _run_join(self, request: JoinPresence, reply: Reply) -> None:
        key = (request.app_id, request.channel, request.socket_id)
        marker = MARKER + f"{self.node_id}/{next(self._ids)}".encode()
        pending = _PendingJoin(self, request, reply)
        async with self._shared():
            self._orphans.pop(key, None)
            self._answers[marker[1:]] = pending
            try:
                async with asyncio.timeout(self.answer_timeout):
                    result = await self._join_script(self._redis, request, request.max_members,
                                                     marker)
                    if not result:
                        reply(Full(request.max_members))
                        return
                    pending.result.set_result(result)
                    await pending.answered
            except Failure as exc:
                if pending.answered.done():  # answered as the time ran out
                    return
                # the script may have run: leave again once Redis answers (heartbeat)
                self._orphans[key] = (f"{self.incarnation}|{request.socket_id}", LeavePresence(
                    request.app_id, request.channel, request.socket_id, request.user_id,
                    member_removed(request.app_id, request.channel, request.user_id)))
                pending.given_up = True
                reply(self._unavailable(exc))
            finally:
                self._answers.pop(marker[1:], None)

    async def leave_presence(self, request: LeavePresence) -> Left | Unavailable:
        if self._redis is None:
            return Unavailable("cluster state is not started; start the server first")
        key = (request.app_id, request.channel, request.socket_id)
        async with self._shared():
            self._joined.pop(key, None)
            field = f"{self.incarnation}|{request.socket_id}"
            try:
                last = await self._leave_script(self._redis, request, field)
            except Failure as exc:
                self._orphans[key] = (field, request)
                return self._unavailable(exc)
        if last:
            self.member_changed(request.app_id, request.channel, request.user_id, False)
        return Left(bool(last))


class _PendingJoin:
    """A join in flight: the script's reply and its marker on the stream, in either order."""

    __slots__ = ("state", "request", "reply", "result", "answered", "given_up")

    def __init__(self, state: RedisPresence, request: JoinPresence, reply: Reply) -> None:
        loop = asyncio.get_running_loop()
        self.state, self.request, self.reply = state, request, reply
        self.result: asyncio.Future[Any] = loop.create_future()  # the script's reply
        self.answered: asyncio.Future[None] = loop.create_future()
        self.given_up = False

    def reached(self) -> Awaitable[None] | None:
        """The marker arrived: answer now, or once the script's reply has (awaitable)."""
        if self.result.done():
            self._answer()
            return None
        return self._answer_later()

    async def _answer_later(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.answer_timeout):
                await asyncio.shield(self.result)
        if self.result.done():
            self._answer()

    def _answer(self) -> None:
        if self.given_up or self.answered.done():
            return
        request, state = self.request, self.state
        first, roster = self.result.result()
        state._joined[(request.app_id, request.channel, request.socket_id)] = request
        if first:
            state.member_changed(request.app_id, request.channel, request.user_id, True)
        self.reply(Joined(bool(first), {roster[i].decode(): loads(roster[i + 1])
                                        for i in range(0, len(roster), 2)}))
        self.answered.set_result(None)

