"""Metrics: plain counters read at scrape time, served for Prometheus on their own port.

:mod:`.snapshot` reads a server's counters into plain values (no library); :mod:`.collector`,
the only module importing prometheus_client, turns them into metric families.
"""
