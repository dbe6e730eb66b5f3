"""Ids become file names and env var keys reach the engine: a trailing newline passes neither."""

import pytest

from renderlocal.core.envvars import parse_env_overrides
from renderlocal.core.errors import InvalidInput
from renderlocal.core.ids import looks_like_id


def test_an_id_with_a_trailing_newline_is_not_an_id():
    assert looks_like_id("job-" + "a" * 20, "job")
    assert not looks_like_id("job-" + "a" * 20 + "\n", "job")
    assert not looks_like_id("dpg-" + "a" * 20 + "-a\n")


def test_an_env_var_key_with_a_trailing_newline_is_refused():
    assert parse_env_overrides(["A=1"]) == {"A": "1"}
    with pytest.raises(InvalidInput, match="invalid"):
        parse_env_overrides(["A\n=1"])
