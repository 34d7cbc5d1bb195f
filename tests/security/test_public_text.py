"""Issue 9 item 15 (part): what a visitor reads carries no absolute server path."""
import re

from public_space import make_run

ABSOLUTE = re.compile(r"(?<![\w.~:/>-])/(?:root|home|tmp|usr|opt|data|etc|var)/")


def test_train_status_shows_no_server_paths(space):
    from hust_sft.ui.common import SAMPLE_DATA

    log = (f'Traceback (most recent call last):\n  File "{space.tmp}/hust_sft/training.py", line 3, in train\n'
           f"OSError: could not read {space.runs_dir}/failed-run/adapter and /root/.cache/hust-sft/x.jsonl\n")
    make_run(space.runs_dir, "failed-run", SAMPLE_DATA, train_log=log, status="failed",
             message=f"could not read {space.runs_dir}/failed-run/adapter")
    progress, _, tail, table = space.client.predict("en", api_name="/train_status")
    shown = progress + tail + repr(table)
    assert "failed-run" in progress and "could not read" in progress and "training.py" in tail
    assert str(space.runs_dir) not in shown and str(space.tmp) not in shown
    assert not ABSOLUTE.search(shown), ABSOLUTE.search(shown)
