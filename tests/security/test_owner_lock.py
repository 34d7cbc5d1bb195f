"""The owner lock of a public Space, attacked through the API as an anonymous visitor."""
from hust_sft.i18n import t

from public_space import OWNER


def test_anonymous_train_start_is_refused(space):
    """/train_start without a login answers the lock text and starts nothing (no run folder, no job)."""
    answer = space.client.predict("en", "attack-run", api_name="/train_start")
    assert answer == t("ui.lock.login", "en", owner=OWNER)
    assert not (space.runs_dir / "attack-run").exists()
    assert not (space.runs_dir / ".active.json").exists()


def test_anonymous_train_stop_and_publish_are_refused(space):
    assert space.client.predict("en", api_name="/train_stop") == t("ui.lock.login", "en", owner=OWNER)
    answer = space.client.predict("en", None, "owner/stolen", False, api_name="/publish")
    assert answer == t("ui.lock.login", "en", owner=OWNER)
