"""Where the client suites are required (scripts/test.sh, CI), a missing tool fails the run."""

import pytest

from tests.clients.conftest import REQUIRE_CLIENTS, missing


@pytest.fixture
def plain_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_CLIENTS, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("name", "value"), [(REQUIRE_CLIENTS, "1"), ("CI", "true")])
def test_a_missing_tool_fails_where_the_clients_are_required(plain_env, name, value):
    plain_env.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="node is not on PATH.*setup.sh test"):
        missing("node is not on PATH")


def test_a_missing_tool_skips_a_plain_pytest_run(plain_env):
    with pytest.raises(pytest.skip.Exception, match="node is not on PATH"):
        missing("node is not on PATH")
