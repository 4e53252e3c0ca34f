"""What the pages give their templates: the context of every template rendered meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, template_rendered


@contextmanager
def rendered(app: Flask) -> Iterator[list[dict]]:
    """A list that fills with the context of each template ``app`` renders in the block."""
    contexts: list[dict] = []

    def record(sender, template, context, **extra):
        contexts.append(context)

    template_rendered.connect(record, app)
    try:
        yield contexts
    finally:
        template_rendered.disconnect(record, app)
