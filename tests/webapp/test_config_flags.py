"""The webapp's yes-or-no settings take the spellings the broadcaster's take (shared/flags.py)."""

import pytest

from webapp import config as app_config


@pytest.mark.parametrize("spelling, on", [("on", True), ("yes", True), ("1", True),
                                          ("off", False), ("No", False), ("0", False)])
def test_a_yes_or_no_setting_takes_every_usual_spelling(spelling, on):
    assert app_config.load({"OUTBOX_KEEP_ALIVE": spelling}, None)["OUTBOX_KEEP_ALIVE"] is on


def test_anything_else_is_refused_listing_the_spellings_not_read_as_no():
    with pytest.raises(ValueError) as refused:
        app_config.load({"OUTBOX_KEEP_ALIVE": "maybe"}, None)
    assert str(refused.value) == ("environment variable OUTBOX_KEEP_ALIVE='maybe' is not true or "
                                  "false (true/false, 1/0, yes/no or on/off)")
