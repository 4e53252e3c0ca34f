"""Code both sides of Resound use: signatures, channel-name rules and payload encoding.

Everything here is pure (no I/O), so the broadcaster and the Flask app agree byte for byte.
"""
