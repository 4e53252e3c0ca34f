"""What the Sans-I/O core asks of cluster state, and the answers that come back as inputs.

A :class:`~broadcaster.protocol.session.Session` never awaits. When a decision must be made
cluster-wide (a presence join or leave, a cache channel's last event), it hands a request to
its ``ask`` callable and carries on; the edge runs the request on the cluster state and calls
``Session.answer(request, answer)`` with one of the answer values below: at once on the local
twin, later on the Redis twin. A backend outage is an :class:`Unavailable` answer, never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .history import Window
from .publication import Publication


@dataclass(frozen=True, slots=True)
class JoinPresence:
    """Add ``socket_id`` as a socket of member ``user_id`` on presence channel ``channel``.

    When it is the user's first socket anywhere and the channel already has ``max_members``
    users, the answer is :class:`Full`. When it is the user's first socket, the state publishes
    ``added`` (``pusher_internal:member_added``) to every node, atomically with the decision.
    With ``roster_of``, the answered roster holds only those users (the ones present).
    """

    app_id: str
    channel: str
    socket_id: str
    user_id: str
    user_info: Any
    max_members: int
    added: Publication
    roster_of: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LeavePresence:
    """Remove ``socket_id`` from ``channel``; on the user's last socket, publish ``removed``."""

    app_id: str
    channel: str
    socket_id: str
    user_id: str
    removed: Publication


@dataclass(frozen=True, slots=True)
class FetchCache:
    """The last event of cache channel ``channel`` (message JSON), if one is fresh."""

    app_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class CountChannels:
    """Cluster-wide counts of ``names`` (each given back, occupied or not), or, with None, of
    every occupied channel (users' own ``#server-to-user-`` channels left out)."""

    app_id: str
    names: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ListMembers:
    """A presence channel's roster across the cluster."""

    app_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class CountConnections:
    """How many sockets the app has open across the cluster."""

    app_id: str


@dataclass(frozen=True, slots=True)
class SignIn:
    """Count ``socket_id`` as signed in as ``user_id``; answered with who of ``watchlist`` is
    online (signed in on some socket anywhere). On the user's first socket anywhere, the state
    publishes ``online`` (a watchlist publication) to every node, atomically with the decision.
    """

    app_id: str
    socket_id: str
    user_id: str
    watchlist: tuple[str, ...]
    online: Publication


@dataclass(frozen=True, slots=True)
class SignOut:
    """``socket_id`` is no longer signed in as ``user_id``; on the user's last socket anywhere,
    the state publishes ``offline``. Answered with :class:`Left`."""

    app_id: str
    socket_id: str
    user_id: str
    offline: Publication


@dataclass(frozen=True, slots=True)
class Listen:
    """Make sure this node receives what is published on ``channel`` from now on (interest
    routing: in a cluster, a node hears only the channels its own sockets are on). Answered
    with :class:`Listening` once it does, or :class:`Unavailable`. Asked only where
    ``AppState.routes`` says the channel is not heard yet; the bus answers, not the state."""

    app_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class ReadHistory:
    """History channel ``channel``'s kept events after serial ``after`` (at most ``limit``),
    answered with a :class:`~.history.Window`; ``limit`` 0 asks only for its position."""

    app_id: str
    channel: str
    after: int = 0
    limit: int = 0


Request = (JoinPresence | LeavePresence | FetchCache | CountChannels | ListMembers
           | CountConnections | SignIn | SignOut | Listen | ReadHistory)


@dataclass(frozen=True, slots=True)
class ClaimKeys:
    """Claim the idempotency keys of triggers to app ``app_id``, in order.

    A key is fresh the first time it is claimed within the window and a repeat after that (a
    key given twice in one request included); ``None``, an event without a key, is always
    fresh. ``fingerprints`` (one per key) name each event: a repeat must carry the
    fingerprint the key was claimed with, or the key is reused for another event and nothing
    of the request is claimed. The idempotency store (:mod:`broadcaster.cluster.idempotency`)
    answers, not the cluster state.
    """

    app_id: str
    keys: tuple[str | None, ...]
    fingerprints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CountApiCall:
    """Count one HTTP API call of app ``app_id`` against its limit of ``rate`` calls a second
    (bursts of as many), for the whole cluster. The API limits store
    (:mod:`broadcaster.cluster.api_limits`) answers with :class:`ApiCallCounted`."""

    app_id: str
    rate: float


@dataclass(frozen=True, slots=True)
class Joined:
    """The socket is a member; ``first``: the user's first socket; ``members``: the roster
    (user id -> user info) right after the join, the joining user included."""

    first: bool
    members: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Full:
    """The join was refused: the channel already has ``limit`` members."""

    limit: int


@dataclass(frozen=True, slots=True)
class Left:
    """The socket left; ``last``: it was the user's last socket on the channel."""

    last: bool


@dataclass(frozen=True, slots=True)
class Watched:
    """The signed-in socket is counted; ``online``: the ids of its watchlist online now."""

    online: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cached:
    """A cache channel's last event (message JSON), or None on a miss."""

    message: bytes | None


@dataclass(frozen=True, slots=True)
class Listening:
    """The node hears ``channel`` now: anything published on it from here on arrives."""


LISTENING = Listening()


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The cluster state cannot be reached; ``reason`` says what failed and what to do."""

    reason: str


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """One channel's cluster-wide counts: sockets subscribed, and users for presence (else 0)."""

    subscriptions: int
    users: int = 0


@dataclass(frozen=True, slots=True)
class Counts:
    """Channel name -> its counts."""

    channels: dict[str, ChannelCounts]


@dataclass(frozen=True, slots=True)
class Members:
    """User id -> user info, each member of a presence channel once."""

    members: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Connections:
    count: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """For each key of a :class:`ClaimKeys`, in order: True when fresh (deliver the event).

    ``reused``: the keys claimed within the window for another event (other fingerprints);
    when there is one, no key was claimed and ``fresh`` is all False.
    """

    fresh: tuple[bool, ...]
    reused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiCallCounted:
    """The call is within the app's limit (``allowed``), or over it: then ``retry_after`` is
    the seconds until the next call would be allowed."""

    allowed: bool
    retry_after: float = 0.0


Answer = (Joined | Full | Left | Watched | Cached | Counts | Members | Connections | Claimed
          | Listening | ApiCallCounted | Window | Unavailable)
