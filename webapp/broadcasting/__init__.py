"""Broadcasting: channel rules and ``/broadcasting/auth``, the broadcast events, the outbox and
its delivery (worker, client of the broadcaster's HTTP API), and the webhooks coming in.
Imports ``accounts`` and ``orders``, never ``web``.
"""
