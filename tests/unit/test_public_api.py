"""The package's public API is what ``__all__`` says, and every name resolves."""

from __future__ import annotations

import pytest

import lookaside


def test_every_export_resolves() -> None:
    assert set(lookaside.__all__) == {*lookaside._EXPORTS, "__version__"}
    for name in lookaside.__all__:
        assert getattr(lookaside, name) is not None


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        _ = lookaside.NoSuchThing  # type: ignore[attr-defined]
