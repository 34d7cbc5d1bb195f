"""Issue 9 item 10: the owner lock trusts OAuth only where it is the Hub's real OAuth (SYSTEM=spaces).

With SPACE_ID set but no SYSTEM=spaces, Gradio would mock the login: `/login/huggingface` signs anyone in
as the user of the machine's token (the owner's HF_TOKEN). Such an app shows no login, offers no login
route, and refuses every owner action with a message saying why.
"""
import pytest

from hust_sft.i18n import t

from public_space import FAKE_TOKEN, OWNER, FakeHub, start_space


@pytest.fixture(scope="module")
def no_system_space(tmp_path_factory):
    hub = FakeHub()
    sp = start_space(tmp_path_factory.mktemp("no-system"), hub, SYSTEM=None)
    yield sp
    sp.close()
    hub.close()


def test_without_system_spaces_there_is_no_mock_login(no_system_space):
    sp = no_system_space
    response = sp.http.get("/login/huggingface", follow_redirects=False)
    assert response.status_code == 404
    assert "set-cookie" not in response.headers
    assert not [r for r in sp.hub.seen() if r.path.startswith("/api/whoami")]  # nobody asked who the token is


def test_without_system_spaces_owner_actions_are_refused_with_the_reason(no_system_space):
    sp = no_system_space
    expected = t("ui.lock.no_oauth", "en", owner=OWNER)
    assert sp.client.predict("en", "attack-run", api_name="/train_start") == expected
    assert sp.client.predict("en", api_name="/train_stop") == expected
    assert sp.client.predict("en", None, "owner/stolen", False, api_name="/publish") == expected
    assert sp.client.predict("en", api_name="/data_preview")[1] == expected
    assert not (sp.runs_dir / "attack-run").exists()
    assert not [r for r in sp.hub.seen() if FAKE_TOKEN in (r.authorization or "")]
