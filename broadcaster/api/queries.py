"""API answers that need cluster state: the requests to run, and how to render their answers.

An endpoint that only needs this process (a trigger without ``info`` or idempotency keys, of an
app without an API rate limit) returns an :class:`~broadcaster.api.http.HttpResponse` at once.
One that reads counts, members or a cache, claims idempotency keys, or counts a call against
the app's API rate limit, returns a :class:`Query`; the listener runs its requests on the
cluster state or the stores (at once on one process, over Redis in a cluster) and writes
:func:`render`'s response, still in request order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..protocol.requests import Answer, ClaimKeys, CountApiCall, Request, Unavailable
from .http import HttpResponse, error_response


@dataclass(frozen=True, slots=True)
class Query:
    """``requests`` to ask the cluster state (a :class:`ClaimKeys`, the idempotency store; a
    :class:`CountApiCall`, the API limits store); ``render`` turns their answers, in the same
    order, into the response, or into the next query to ask (the API rate limit is asked
    first, then the endpoint's own query, if any)."""

    requests: tuple[Request | ClaimKeys | CountApiCall, ...]
    render: Callable[[Sequence[Answer]], HttpResponse | Query]


def render(query: Query, answers: Sequence[Answer]) -> HttpResponse | Query:
    """The response to ``query`` (or the next query to ask): a 503 naming the cause when the
    cluster state was away."""
    for answer in answers:
        if isinstance(answer, Unavailable):
            return error_response(503, answer.reason)
    return query.render(answers)
