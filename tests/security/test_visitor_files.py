"""Issue 9 items 4, 5 and 7, attacked through the running Space as an anonymous visitor.

4. Uploads and data previews are owner actions; evaluation refuses a data file that changed since training.
5. Nothing under the runs folder is downloadable; the CSV of a visitor's evaluation is served from
   a separate public folder.
7. A visitor's evaluation never overwrites the run's eval/ (Publish copies it into the model card).
"""
import json
import shutil

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from hust_sft.i18n import t

from public_space import OWNER, make_run

EVAL = dict(limit=2, batch_size=2, bootstrap=100, max_new_tokens=4)


@pytest.fixture(scope="module")
def data_copy(space):
    """The owner's training data, in a folder of its own (a test below changes it)."""
    from hust_sft.ui.common import SAMPLE_DATA

    path = space.tmp / "owner-data" / "handbook.jsonl"
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(SAMPLE_DATA, path)
    return path


@pytest.fixture(scope="module")
def files_run(space, data_copy):
    """A run with the owner's full evaluation in eval/ (what Publish puts in the model card)."""
    run = make_run(space.runs_dir, "files-run", data_copy, train_log="step 1/4 loss 3.2\n")
    (run / "eval").mkdir()
    (run / "eval" / "summary.md").write_text("# The owner's evaluation\n", encoding="utf-8")
    (run / "eval" / "summary.json").write_text('{"owner": true}\n', encoding="utf-8")
    space.client.predict(api_name="/eval_runs")  # the Evaluate tab's run list, as the page loads it
    return run


def evaluate(space, run, **kw):
    v = {**EVAL, **kw}
    return space.client.predict("en", run, "", None, v["limit"], v["batch_size"], v["bootstrap"],
                                v["max_new_tokens"], api_name="/evaluate")


def test_data_preview_is_an_owner_action(space):
    table, report = space.client.predict("en", api_name="/data_preview")
    assert report == t("ui.lock.login", "en", owner=OWNER)
    assert table["data"] == []


def test_an_anonymous_upload_is_refused_and_nothing_is_stored(space, tmp_path):
    src = tmp_path / "handbook.jsonl"
    src.write_text('{"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
                   encoding="utf-8")
    assert space.client.predict("en", handle_file(str(src)), api_name="/data_upload") == ""
    assert not (space.runs_dir / "uploads").exists()


def test_nothing_under_the_runs_folder_is_downloadable(space, files_run):
    for path in [files_run / "run.json", files_run / "settings.json", files_run / "train.log",
                 files_run / "adapter" / "adapter_model.safetensors", files_run / "eval" / "summary.json"]:
        assert path.is_file()
        for url in (f"/gradio_api/file={path}", f"/gradio_api/file={path.resolve()}", f"/file={path}"):
            response = space.http.get(url)
            assert response.status_code in (403, 404), (url, response.status_code)
            assert path.read_bytes() not in response.content


def test_a_visitor_evaluation_writes_outside_the_run_and_its_csv_is_served_from_elsewhere(space, files_run):
    before = {p.name: p.read_bytes() for p in (files_run / "eval").iterdir()}
    for limit in (2, None):  # a quick look, and a full evaluation (every test question)
        shown = evaluate(space, "files-run", limit=limit)
        md, csv = shown[0], shown[-1]  # the summary markdown … the CSV download
        assert md.startswith("# ")
        assert {p.name: p.read_bytes() for p in (files_run / "eval").iterdir()} == before
        assert sorted(p.name for p in files_run.iterdir()) == ["adapter", "eval", "events.jsonl", "run.json",
                                                              "settings.json", "train.log"]
        assert str(space.runs_dir) not in json.dumps(csv)
        response = space.http.get(csv["url"].removeprefix(space.url))
        assert response.status_code == 200
        header = response.content.decode("utf-8-sig").splitlines()[0].split(",")
        assert "question" in header and "answer:files-run" in header


def test_evaluation_refuses_data_that_changed_since_training(space, files_run, data_copy):
    recorded = json.loads((files_run / "run.json").read_text())["data"]["sha256"]
    with data_copy.open("a", encoding="utf-8") as f:
        record = {"conversations": [{"role": "user", "content": "新问题？"},
                                    {"role": "assistant", "content": "新答案。"}]}
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    from hust_sft.data import file_sha256

    now = file_sha256(data_copy)
    with pytest.raises(AppError) as e:
        evaluate(space, "files-run")
    assert t("access.error.data_changed", "en", path="handbook.jsonl", now=now[:12], run="files-run",
             recorded=recorded[:12]) in str(e.value)
    assert str(data_copy) not in str(e.value)
