"""``pusher:signin`` and watchlist events for one socket: the sign-in part of a
:class:`~broadcaster.protocol.session.Session` (a mixin: the state is the session's)."""

from __future__ import annotations

from typing import Any

from shared.channels import SERVER_TO_USER_PREFIX, channel_name_error
from shared.payloads import JSONDecodeError, encode_message, loads
from shared.signatures import verify_user

from .messages import GENERIC_RECONNECT, SUBSCRIPTION_LIMIT, UNAUTHORIZED, ProtocolError, Signin
from .replies import error_message, reason_of
from .requests import Answer, SignIn, SignOut, Watched
from .watchlist import MAX_WATCHLIST, events_message, status_publication, watchlist_of


class SigningIn:
    """Signing a socket in as a user, and following the user's watchlist."""

    __slots__ = ()

    def signin(self, command: Signin) -> None:
        config = self.app.config
        if not verify_user(command.auth, config.key, config.secret, self.socket_id,
                           command.user_data):
            raise ProtocolError(
                UNAUTHORIZED,
                "invalid sign-in: auth must be 'key:' + hex HMAC-SHA256 of "
                "'socket_id::user::user_data'",
            )
        try:
            user = loads(command.user_data)
        except JSONDecodeError:
            user = None
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise ProtocolError(GENERIC_RECONNECT, "user_data must be a JSON object with an 'id'")
        error = channel_name_error(SERVER_TO_USER_PREFIX + user_id)
        if error:  # the id names the user's own channel, which the HTTP API must reach too
            raise ProtocolError(GENERIC_RECONNECT, f"user_data id: {error}")
        if self.user_id is not None and self.user_id != user_id:
            previous = self.user_id
            self.user_id = None
            self.unsubscribe(SERVER_TO_USER_PREFIX + previous)
            if not self._is_user(previous):
                self.app.remove_user(previous, self.client)
            self._sign_out(previous)
        self.user_id = user_id
        self.deadline = None  # an authorized connection now
        self.app.add_user(user_id, self.client)
        personal = SERVER_TO_USER_PREFIX + user_id
        if personal not in self.channels:
            self._enter(personal)
        self.client.send(
            encode_message("pusher:signin_success", {"user_data": command.user_data})
        )
        if config.watchlist_events:
            self._watch(user)

    def _watch(self, user: dict[str, Any]) -> None:
        """Count the sign-in cluster-wide and follow the user's watchlist (Pusher's watchlist
        events): the current state comes with the answer, changes as they happen."""
        self.app.unwatch(self.watching, self.client)
        self.watching, given = watchlist_of(user)
        if given > MAX_WATCHLIST:
            self.app.refusals[SUBSCRIPTION_LIMIT] += 1
            self.client.send(error_message(
                SUBSCRIPTION_LIMIT, f"user_data.watchlist has {given} ids; only the first "
                f"{MAX_WATCHLIST} are watched"))
        self.app.watch(self.watching, self.client)  # before asking: no change goes unseen
        user_id = self.user_id
        self._request(SignIn(self.app.id, self.socket_id, user_id, self.watching,
                             status_publication(self.app.id, user_id, online=True)))

    def _watched(self, request: SignIn, answer: Answer) -> None:
        if not isinstance(answer, Watched):
            self.client.send(error_message(GENERIC_RECONNECT, f"cannot read who of the "
                                           f"watchlist is online: {reason_of(answer)}"))
            return
        online = set(answer.online)
        if request.watchlist:
            self.client.send(events_message(
                tuple(i for i in request.watchlist if i in online),
                tuple(i for i in request.watchlist if i not in online)))

    def _sign_out_request(self, user_id: str) -> SignOut:
        return SignOut(self.app.id, self.socket_id, user_id,
                       status_publication(self.app.id, user_id, online=False))

    def _sign_out(self, user_id: str) -> None:
        """Stop counting this socket as ``user_id`` online, and stop watching its watchlist."""
        if self.app.config.watchlist_events:
            self.app.unwatch(self.watching, self.client)
            self.watching = ()
            if not isinstance(self.waiting, SignIn):  # else its answer signs out (answer())
                self.ask(self._sign_out_request(user_id))
