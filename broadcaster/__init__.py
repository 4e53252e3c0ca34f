"""Resound broadcaster: a Pusher-protocol 7 WebSocket server and HTTP API on one port."""
