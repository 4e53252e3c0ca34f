"""The web: HTML pages, the JSON API, errors, security headers, pagination, request bodies and
idempotent requests. The top of the flow: it may import every other part.
"""
