"""The domain: users, products, orders, the status machine, money, stock and search.

No request, no HTTP, no Flask app here, and nothing from ``broadcasting``, ``accounts`` or
``web`` (``tests/test_layers.py`` checks): a change returns the events it caused, and the
caller's unit of work (:mod:`webapp.broadcasting.unit_of_work`) writes them to the outbox in the
same transaction.
"""
