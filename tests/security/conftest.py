"""Fixtures of tests/security: the real app running as a public Space (see public_space.py)."""
from __future__ import annotations

import pytest

from public_space import FakeHub, running_space


@pytest.fixture(scope="session")
def fake_hub():
    hub = FakeHub()
    yield hub
    hub.close()


@pytest.fixture(scope="session")
def space(tmp_path_factory, fake_hub):
    """The demo app running as the public Space `owner/space`, for an anonymous visitor."""
    with running_space(tmp_path_factory.mktemp("space"), fake_hub) as sp:
        yield sp
