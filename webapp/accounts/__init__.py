"""Accounts: signing in (passwords and their limits), who is calling (session cookie or API
token), and ending a user's sessions. Imports ``orders`` only, never ``broadcasting`` or ``web``.
"""
