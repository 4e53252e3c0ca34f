"""README.md's reference tables against the code: every setting the broadcaster reads is in
``broadcaster start --help`` and in the README's settings table, and nothing else is; every
metric it exposes is in the metrics tables."""

from __future__ import annotations

import re
from pathlib import Path

from broadcaster.config import load_config
from broadcaster.metrics.collector import METRICS, QUEUE_METRIC
from broadcaster.settings_help import SETTINGS_HELP

README = Path(__file__).resolve().parents[1] / "README.md"
NAME = re.compile(r"\b(?:REVERB|RESOUND|REDIS)_[A-Z0-9_]*[A-Z0-9]\b")


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## ``."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def first_cells(text: str, header: str) -> set[str]:
    """The backquoted names in the first column of the tables in ``text`` whose header row
    starts with ``header``."""
    names: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if line.startswith(f"| {header} |"):
            in_table = True
        elif in_table and line.startswith("|"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
        else:
            in_table = False
    return names


class Reading(dict):
    """An environment that notes every name asked of it."""

    def __init__(self, values: dict[str, str], asked: set[str]) -> None:
        super().__init__(values)
        self.asked = asked

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)

    def __contains__(self, name) -> bool:
        self.asked.add(name)
        return super().__contains__(name)

    def __getitem__(self, name):
        self.asked.add(name)
        return super().__getitem__(name)


def read_by_load_config() -> set[str]:
    asked: set[str] = set()
    for env in ({}, {"REVERB_SCALING_ENABLED": "true"},
                {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis://r.test:6379/0",
                 "REVERB_APP_RATE_LIMITING_ENABLED": "true",
                 "RESOUND_APP_AUTHORIZED_CONNECTIONS": "true"}):
        load_config(Reading(env, asked))
    return {name for name in asked if NAME.fullmatch(name)}


def test_start_help_lists_every_setting_the_broadcaster_reads_and_no_other():
    assert set(NAME.findall(SETTINGS_HELP)) == read_by_load_config()


def test_the_readme_settings_table_lists_the_settings_start_help_lists():
    documented = {name for cell in first_cells(section("The broadcaster"), "Setting")
                  for name in NAME.findall(cell)}
    assert documented == set(NAME.findall(SETTINGS_HELP))


def test_the_readme_metrics_tables_list_every_metric_exposed():
    documented = {name for cell in first_cells(section("Metrics"), "Metric")
                  for name in re.findall(r"\b(?:soketi|resound)_[a-z_]+", cell)}
    assert documented == {exposed for exposed, *_ in METRICS} | {QUEUE_METRIC}
