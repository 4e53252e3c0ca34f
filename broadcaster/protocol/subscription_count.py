"""``pusher_internal:subscription_count``: a channel's subscribers told how many they are.

Opt-in per app (``subscription_count``), never on presence channels (they have member events)
nor on users' own channels. Pusher's throttle: a change is sent at once while the channel has
at most :data:`THROTTLE_ABOVE` subscribers, and above that at most every
:data:`THROTTLE_SECONDS`; a change held back goes out from :meth:`SubscriptionCounts.flush`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.channels import SERVER_TO_USER_PREFIX
from shared.payloads import encode_message

if TYPE_CHECKING:  # the state holds an instance of this; it is imported at run time there
    from .state import AppState, Channel

SUBSCRIPTION_COUNT = "pusher_internal:subscription_count"
THROTTLE_ABOVE = 100  # subscribers
THROTTLE_SECONDS = 5.0


def counted(channel: Channel) -> bool:
    """Whether ``channel`` gets subscription counts at all."""
    return not channel.type.is_presence and not channel.name.startswith(SERVER_TO_USER_PREFIX)


class SubscriptionCounts:
    """One app's counts: when each channel's was last sent, and which changes wait."""

    __slots__ = ("app", "sent_at", "due")

    def __init__(self, app: AppState) -> None:
        self.app = app
        self.sent_at: dict[str, float] = {}  # channel -> when its count was last sent
        self.due: set[str] = set()  # channels whose changed count waits for the throttle

    def changed(self, channel: Channel, now: float) -> None:
        """Call after a socket joined or left ``channel`` (a counted one); sends or holds."""
        name = channel.name
        if not channel.subscribers:
            self.sent_at.pop(name, None)  # nobody to tell; the next subscriber starts afresh
            self.due.discard(name)
            return
        last = self.sent_at.get(name)
        if (channel.subscription_count <= THROTTLE_ABOVE or last is None
                or now - last >= THROTTLE_SECONDS):
            self._send(channel, now)
        else:
            self.due.add(name)

    def flush(self, now: float) -> None:
        """Send the held-back counts whose throttle has passed: call from the periodic sweep."""
        for name in [name for name in self.due if now - self.sent_at[name] >= THROTTLE_SECONDS]:
            channel = self.app.channel(name)
            if channel is not None:
                self._send(channel, now)
            else:
                self.due.discard(name)

    def _send(self, channel: Channel, now: float) -> None:
        self.sent_at[channel.name] = now
        self.due.discard(channel.name)
        self.app.send_to_channel(channel, encode_message(
            SUBSCRIPTION_COUNT, {"subscription_count": channel.subscription_count},
            channel=channel.name))
