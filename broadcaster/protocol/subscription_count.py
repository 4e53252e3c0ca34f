"""``pusher_internal:subscription_count``: a channel's subscribers told how many they are.

Opt-in per app (``subscription_count``, and the ``subscription_count`` webhook, which the
same throttle paces), never on presence channels (they have member events)
nor on users' own channels. Pusher's throttle: a change is sent at once while the channel has
at most :data:`THROTTLE_ABOVE` subscribers, and above that at most every
:data:`THROTTLE_SECONDS`; a change held back goes out from :meth:`SubscriptionCounts.flush`.

On one process the counts are this process's and go out as they change. In a cluster they are
cluster-wide: the sweep polls the cluster state (:meth:`SubscriptionCounts.poll`) and hands the
answer to :meth:`SubscriptionCounts.counted`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.channels import SERVER_TO_USER_PREFIX
from shared.payloads import encode_message

from .requests import Answer, CountChannels, Counts

if TYPE_CHECKING:  # the state holds an instance of this; it is imported at run time there
    from .state import AppState, Channel

SUBSCRIPTION_COUNT = "pusher_internal:subscription_count"
THROTTLE_ABOVE = 100  # subscribers
THROTTLE_SECONDS = 5.0


def counted(channel: Channel) -> bool:
    """Whether ``channel`` gets subscription counts at all."""
    return not channel.type.is_presence and not channel.name.startswith(SERVER_TO_USER_PREFIX)


class SubscriptionCounts:
    """One app's counts on this node: what was last sent, and which changes wait."""

    __slots__ = ("app", "polled", "asking", "sent", "due", "fresh", "left", "asked_left")

    def __init__(self, app: AppState) -> None:
        self.app = app
        self.polled = False  # True in a cluster: counts come from polls, not from this node
        self.asking = False  # a poll is out
        self.sent: dict[str, tuple[float, int]] = {}  # channel -> (when, count) last sent
        self.due: dict[str, int] = {}  # channel -> a count the throttle holds back
        self.fresh: set[str] = set()  # polled channels with a new subscriber since the last poll
        # polled channels this node's last subscriber left (for the webhook: the node where a
        # change happened tells it, as others may not have seen the count before it)
        self.left: set[str] = set()
        self.asked_left: set[str] = set()  # ... of them, the ones the poll out asks about

    def changed(self, channel: Channel, now: float) -> None:
        """Call after a socket joined or left ``channel`` (a counted one); sends or holds."""
        name = channel.name
        if not channel.subscribers:
            self.sent.pop(name, None)  # nobody to tell; the next subscriber starts afresh
            self.due.pop(name, None)
            self.fresh.discard(name)
            if self.polled and self.app.hooks is not None:
                self.left.add(name)
        elif self.polled:
            self.fresh.add(name)
        else:
            self._offer(channel, channel.subscription_count, now)

    def poll(self) -> CountChannels | None:
        """In a cluster, the request for the cluster-wide counts of this node's channels (None
        when one is out already); give its answer to :meth:`counted`."""
        if not self.polled or self.asking:
            return None
        names = {name for name, channel in self.app.channels.items() if counted(channel)}
        self.asked_left, self.left = self.left - names, set()
        if not names and not self.asked_left:
            return None
        self.asking = True
        return CountChannels(self.app.id, tuple(names | self.asked_left))

    def counted(self, answer: Answer, now: float) -> None:
        """The answer to :meth:`poll`: send the counts that changed (an outage sends none)."""
        self.asking = False
        if isinstance(answer, Counts):
            self.update({name: counts.subscriptions for name, counts in answer.channels.items()},
                        now)
        self.asked_left = set()

    def update(self, counts: Mapping[str, int], now: float) -> None:
        for name, count in counts.items():
            channel = self.app.channel(name)
            if channel is not None and channel.subscribers:
                self._offer(channel, count, now)
            elif name in self.asked_left and count and self.app.hooks is not None:
                self.app.hooks.subscription_counted(name, count)  # its sockets are gone here

    def flush(self, now: float) -> None:
        """Send the held-back counts whose throttle has passed: call from the periodic sweep."""
        for name, count in list(self.due.items()):
            if now - self.sent[name][0] >= THROTTLE_SECONDS:
                del self.due[name]
                channel = self.app.channel(name)
                if channel is not None:
                    self._send(channel, count, now)

    def _offer(self, channel: Channel, count: int, now: float) -> None:
        name = channel.name
        last = self.sent.get(name)
        if last is not None and last[1] == count and name not in self.fresh:
            self.due.pop(name, None)
        elif count <= THROTTLE_ABOVE or last is None or now - last[0] >= THROTTLE_SECONDS:
            self._send(channel, count, now)
        else:
            self.due[name] = count

    def _send(self, channel: Channel, count: int, now: float) -> None:
        self.sent[channel.name] = (now, count)
        self.due.pop(channel.name, None)
        self.fresh.discard(channel.name)
        if self.app.config.subscription_count:
            self.app.send_to_channel(channel, encode_message(
                SUBSCRIPTION_COUNT, {"subscription_count": count}, channel=channel.name))
        if self.app.hooks is not None:
            self.app.hooks.subscription_counted(channel.name, count)
