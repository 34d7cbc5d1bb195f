"""evaluate() and evaluate.py end to end on the tiny model with a real (perturbed) LoRA adapter."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hust_sft import facts, metrics
from hust_sft.data import split_records
from hust_sft.data.formats import load_records
from hust_sft.evaluation import EvalError, evaluate, model_names, read_rows, summarize
from hust_sft.i18n import t
from hust_sft.settings import EvalSettings, RetrievalSettings, set_values

ROOT = Path(__file__).resolve().parents[1]
QA = [("一卡通丢了怎么办？", "登录 http://ecard.hust.edu.cn 挂失，或到一站式服务大厅办理。"),
      ("图书馆几点开门？", "图书馆8:00开门，22:00闭馆。"),
      ("校医院在哪里？", "校医院在东区，电话027-87541234。"),
      ("怎么申请奖学金？", "在每年9月提交《奖学金申请表》给辅导员。"),
      ("Where is the gym?", "The gym is next to the East Stadium."),
      ("宿舍几点关门？", "宿舍23:00关门。"),
      ("如何办理学生证补办？", "到学院教务办公室填写补办申请。"),
      ("选课系统网址是什么？", "选课系统网址为 http://xk.hust.edu.cn 。"),
      ("转专业需要什么条件？", "第一学年绩点排名前20%可申请转专业。"),
      ("What is the campus WiFi called?", "It is called HUST_WIRELESS.")]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "qa.jsonl"
    lines = [{"conversations": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
             for q, a in QA]
    lines[0]["expected_keywords"] = ["一站式服务大厅", "挂失"]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ood_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ood") / "ood.json"
    path.write_text(json.dumps([{"instruction": "北京交通大学的校训是什么？", "input": "", "output": "知行。"},
                                {"instruction": "1+1=?", "input": "", "output": "2"}], ensure_ascii=False),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    """A run directory as training leaves it: adapter/ (perturbed so tuned differs from base) + run.json."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("runs") / "lora-r4.test"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 2.0)
    peft.save_pretrained(run / "adapter")
    (run / "run.json").write_text(json.dumps({"status": "completed", "wall_time_s": 12.5,
                                              "trainable_params": 4096}), encoding="utf-8")
    return run


def write_pairs(path: Path, pairs) -> Path:
    path.write_text("".join(json.dumps({"conversations": [{"role": "user", "content": q},
                                                          {"role": "assistant", "content": a}]},
                                       ensure_ascii=False) + "\n" for q, a in pairs), encoding="utf-8")
    return path


def settings_for(tiny_model_dir, data_file, **values):
    s = EvalSettings()
    set_values(s, {"model": str(tiny_model_dir), "data": str(data_file), "val_ratio": 0.1, "test_ratio": 0.5,
                   "max_new_tokens": 6, "batch_size": 4, "bootstrap": 200, "train_sample": 0,
                   "arms": ["base", "tuned"], **values})
    return s


def test_evaluate_writes_all_four_files(tiny_model_dir, data_file, ood_file, run_dir):
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], ood=str(ood_file), train_sample=2)
    seen = []
    report = evaluate(s, progress=lambda f, msg: seen.append((f, msg)))

    out = run_dir / "eval"                                       # default: <run dir>/eval
    assert report.output_dir == out
    assert sorted(p.name for p in out.iterdir()) == sorted(report.files)
    records, _ = load_records(data_file)
    splits = split_records(records, 0.1, 0.5)
    n_test = len(splits["test"])
    assert 0 < n_test < len(QA)

    # per_example.jsonl: one line per arm and question, in table order, nested scores
    rows = [json.loads(line) for line in (out / "per_example.jsonl").read_text(encoding="utf-8").splitlines()]
    name = "lora-r4.test"
    qids = [f"test-{i}" for i in range(n_test)] + ["ood-0", "ood-1", "train-0", "train-1"]
    assert [(r["arm"], r["qid"]) for r in rows] == [(a, q) for a in ("base", name) for q in qids]
    assert rows == report.rows
    assert [r["split"] for r in rows[:len(qids)]] == ["test"] * n_test + ["ood"] * 2 + ["train"] * 2
    train_questions = {r.question for r in splits["train"]}
    assert {r["question"] for r in rows if r["split"] == "train"} <= train_questions
    assert set(rows[0]["scores"]) == set(metrics.METRICS) | set(facts.FACT_METRICS)
    by = {(r["arm"], r["qid"]): r for r in rows}
    assert any(by[(name, q)]["answer"] != by[("base", q)]["answer"] for q in qids)  # the adapter really answers
    for r in rows:                                                                 # scores are of the answers
        assert r["scores"]["token_f1"] == metrics.token_f1(r["answer"], r["reference"])
        assert r["new_tokens"] >= 1 and r["seconds"] > 0

    # per_example.csv: flattened only here, one row per question, every arm side by side
    with open(out / "per_example.csv", encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(qids)
    assert list(table[0])[:8] == ["split", "qid", "source_line", "question", "reference", "keywords",
                                  "answer:base", f"answer:{name}"]
    assert f"token_f1:{name}" in table[0] and f"loops:{name}" in table[0]
    ood_last = next(r for r in table if r["qid"] == "ood-1")
    assert ood_last["question"] == "1+1=?" and ood_last["reference"] == "2"

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["arms"] == ["base", name]
    assert summary["arm_info"][name] == {"name": name, "model": name, "adapter": str(run_dir), "retrieval": None}
    assert list(summary["splits"]) == ["test", "ood", "train"] and summary["splits"]["ood"]["n"] == 2
    test = summary["splits"]["test"]
    (comp,) = test["comparisons"]
    assert (comp["arm"], comp["against"]) == (name, "base")
    diff = comp["metrics"]["token_f1"]
    assert diff["diff"] == pytest.approx(test["means"][name]["token_f1"] - test["means"]["base"]["token_f1"])
    assert diff["lo"] <= diff["diff"] <= diff["hi"] and diff["n"] == n_test
    same = sum(by[(name, f"test-{i}")]["answer"].strip() == by[("base", f"test-{i}")]["answer"].strip()
               for i in range(n_test))
    assert comp["identical"] == same / n_test
    learn = summary["did_it_learn"][name]
    assert learn["held_out"]["identical_to_base"] == same / n_test
    assert learn["train"]["n"] == 2
    assert learn["train"]["token_f1"] == summary["splits"]["train"]["means"][name]["token_f1"]
    assert learn["held_out"]["looping"] == sum(metrics.loops(by[(name, f"test-{i}")]["answer"]) for i in range(n_test))
    assert learn["held_out"]["mean_chars"] == pytest.approx(
        sum(len(by[(name, f"test-{i}")]["answer"].strip()) for i in range(n_test)) / n_test)
    assert summary["data"]["train"] == {"n": 2, "of": len(splits["train"])}
    res = summary["resources"]
    assert res["base"]["tokens_per_s"] > 0 and res["base"]["peak_memory_mb"] > 0
    assert res["base"]["answers"] == len(qids)
    assert res[name]["wall_time_s"] == 12.5 and res[name]["trainable_params"] == 4096
    assert res[name]["adapter_size_mb"] > 0
    assert summary["data"]["test"]["n"] == n_test and len(summary["data"]["test"]["sha256"]) == 64

    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md == report.markdown and f"{name} − base [95% CI]" in md and "Token F1" in md
    assert "## Did it learn?" in md and "## Training questions (sample) (n = 2)" in md
    assert seen[-1][0] == 1.0 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def _counting_generate(monkeypatch, fail_on_call: int | None = None):
    """generate_batch as is, counting the prompts it answers (and failing on one call, if asked)."""
    from hust_sft import generation

    real, calls = generation.generate_batch, []

    def counting(model, tokenizer, prompts, **kw):
        calls.append(len(prompts))
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise RuntimeError("simulated crash while generating")
        return real(model, tokenizer, prompts, **kw)
    monkeypatch.setattr(generation, "generate_batch", counting)
    return calls


def test_answers_are_on_disk_after_each_batch_and_a_rerun_resumes(tiny_model_dir, data_file, run_dir, tmp_path,
                                                                   monkeypatch):
    out = tmp_path / "ev"
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], output=str(out), batch_size=2, limit=4,
                     train_sample=0)
    calls = _counting_generate(monkeypatch, fail_on_call=3)     # base: 2 batches of 2; dies on the tuned arm
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(s)
    written = read_rows(out / "per_example.jsonl")
    assert [(r["arm"], r["split"]) for r in written] == [("base", "test")] * 4  # both base batches survived
    assert not (out / "summary.json").exists()

    monkeypatch.undo()
    calls = _counting_generate(monkeypatch)
    report = evaluate(s)                                          # same settings: only the tuned arm is answered
    assert calls == [2, 2]
    assert [r for r in report.rows if r["arm"] == "base"] == sorted(written, key=lambda r: r["qid"])
    assert len(report.rows) == 8 and (out / "summary.md").is_file()

    calls.clear()
    again = evaluate(s)                                           # everything is there: nothing generated
    assert calls == [] and again.rows == report.rows

    calls.clear()                                                 # another max_new_tokens: both arms start fresh
    fresh = evaluate(settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], output=str(out),
                                  batch_size=2, limit=4, train_sample=0, max_new_tokens=3))
    assert calls == [2, 2, 2, 2] and all(r["new_tokens"] <= 3 for r in fresh.rows)
    assert len(read_rows(out / "per_example.jsonl")) == 8

    calls.clear()                                                 # base only: the adapter's rows are dropped
    base_only = evaluate(settings_for(tiny_model_dir, data_file, output=str(out), batch_size=2, limit=4,
                                      train_sample=0, max_new_tokens=3))
    assert calls == [] and {r["arm"] for r in read_rows(out / "per_example.jsonl")} == {"base"}
    assert base_only.summary["arms"] == ["base"]


def test_a_crash_while_reporting_loses_no_answer(tiny_model_dir, data_file, tmp_path, monkeypatch):
    from hust_sft.evaluation import reports

    out = tmp_path / "ev"
    s = settings_for(tiny_model_dir, data_file, output=str(out), limit=3, train_sample=0)

    def broken(summary, lang="en"):
        raise KeyError("simulated bug in render_markdown")
    monkeypatch.setattr(reports, "render_markdown", broken)
    with pytest.raises(KeyError):
        evaluate(s)
    assert len(read_rows(out / "per_example.jsonl")) == 3

    monkeypatch.undo()
    calls = _counting_generate(monkeypatch)
    report = evaluate(s)
    assert calls == [] and len(report.rows) == 3 and (out / "summary.md").read_text(encoding="utf-8") == report.markdown


def test_a_half_written_last_line_is_skipped_and_answered_again(tiny_model_dir, data_file, tmp_path, monkeypatch):
    out = tmp_path / "ev"
    s = settings_for(tiny_model_dir, data_file, output=str(out), limit=2, train_sample=0, batch_size=1)
    first = evaluate(s)
    lines = (out / "per_example.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "per_example.jsonl").write_text(lines[0] + "\n" + lines[1][:40], encoding="utf-8")  # killed mid-write
    calls = _counting_generate(monkeypatch)
    again = evaluate(s)
    assert calls == [1] and [r["answer"] for r in again.rows] == [r["answer"] for r in first.rows]
    assert again.rows[0] == first.rows[0]
    assert len(read_rows(out / "per_example.jsonl")) == 2


def test_every_warning_renders_in_every_language():
    """Each eval.warn.* message, with every parameter it names (one is called `key`), through render_markdown."""
    import string

    from hust_sft.evaluation import render_markdown
    from hust_sft.i18n import EN, LANGS, STRINGS

    keys = [k for k in EN if k.startswith("eval.warn.")]
    assert len(keys) >= 2
    summary = {"arms": ["base"], "metrics": [], "splits": {}, "resources": {"base": {}}, "data": {},
               "did_it_learn": {"base": {"held_out": None, "train": None}}, "warnings": []}
    for key in keys:
        names = {f for _, f, _, _ in string.Formatter().parse(EN[key]) if f}
        summary["warnings"].append([key, {n: f"<{n}>" for n in names}])
    for lang in LANGS:
        md = render_markdown(summary, lang)
        for key in keys:
            expected = STRINGS[lang][key].format(**{n: f"<{n}>" for n in
                                                    {f for _, f, _, _ in string.Formatter().parse(EN[key]) if f}})
            assert f"> ⚠ {expected}" in md
    assert "<key>" in render_markdown(summary, "en")


def test_four_arms_in_one_run_retrieval_from_the_training_split(tiny_model_dir, data_file, run_dir, tmp_path,
                                                                tokenizer):
    """A run trained without retrieval: its retrieval arms search an index built from its training split."""
    from hust_sft import passage_size, retrieval
    from hust_sft.data.encoding import prompt_ids
    from hust_sft.evaluation import prompt_sha

    out = tmp_path / "ev"
    # questions about training pairs: retrieval finds them (the test split's share no word with them)
    near = write_pairs(tmp_path / "near.jsonl",
                       [("校医院在哪里？电话多少？", "东区。"), ("奖学金怎么申请？", "交申请表。")])
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], output=str(out), limit=3, ood=str(near),
                     arms=["base", "base+retrieval", "tuned", "tuned+retrieval"])
    report = evaluate(s)
    name = "lora-r4.test"
    arms = ["base", "base+retrieval", name, f"{name}+retrieval"]
    assert report.summary["arms"] == arms
    test = report.summary["splits"]["test"]
    assert [(c["arm"], c["against"]) for c in test["comparisons"]] == [
        ("base+retrieval", "base"), (name, "base"), (f"{name}+retrieval", "base"),
        (f"{name}+retrieval", "base+retrieval")]
    records, _ = load_records(data_file)
    train = split_records(records, 0.1, 0.5)["train"]
    defaults = RetrievalSettings()                        # a run without a retrieval group: the defaults,
    sizes = passage_size.resolve(defaults, train, s.data)  # its passage sizes derived from its training pairs
    index = retrieval.Retriever.build(train, chunk_chars=sizes.chunk_chars)   # the same function and passages
    k = defaults.answer_k
    info = report.summary["arm_info"]
    assert info["base"]["retrieval"] is None and info[name]["retrieval"] is None
    for arm in ("base+retrieval", f"{name}+retrieval"):
        assert info[arm]["retrieval"] == {"origin": "built", "k": k, "passage_max_chars": sizes.answer.chars,
                                          "min_relevance": defaults.min_relevance, "off_topic": "base",
                                          "passages": len(train), "sha256": index.sha256}
    by = {(r["arm"], r["qid"]): r for r in report.rows}
    system = s.data.system_prompt
    on_topic = []
    for qid in ("test-0", "test-1", "test-2", "ood-0", "ood-1"):
        question = by[("base", qid)]["question"]
        expected = index.search(question, k, min_relevance=defaults.min_relevance)
        if not expected:  # off topic: asked plainly, by the base model (test_off_topic_questions_...)
            assert by[(f"{name}+retrieval", qid)]["prompt_sha"] == by[("base", qid)]["prompt_sha"]
            continue
        on_topic.append(qid)
        for arm in ("base+retrieval", f"{name}+retrieval"):      # both retrieval arms read the same passages
            # stored (and published) with the file's name and line, not the folder it lives in
            assert by[(arm, qid)]["passages"] == [
                {**p.to_dict(), "source": f"qa.jsonl:{p.source.rsplit(':', 1)[1]}"} for p in expected]
            assert str(data_file.parent) not in json.dumps(by[(arm, qid)]["passages"], ensure_ascii=False)
            ids = prompt_ids(tokenizer, [{"role": "user", "content": question}], system, passages=expected,
                             passage_max_chars=sizes.answer.chars)
            assert by[(arm, qid)]["prompt_sha"] == prompt_sha(ids)   # asked with exactly those passages
        assert by[("base", qid)]["passages"] is None
        assert by[("base", qid)]["prompt_sha"] == prompt_sha(
            prompt_ids(tokenizer, [{"role": "user", "content": question}], system))
    assert on_topic == ["ood-0", "ood-1"]
    with open(out / "per_example.csv", encoding="utf-8-sig", newline="") as f:
        head = next(csv.reader(f))
    assert [c for c in head if c.startswith("answer:")] == [f"answer:{a}" for a in arms]
    md = report.markdown
    assert f"{name}+retrieval − base+retrieval [95% CI]" in md and "base+retrieval − base [95% CI]" in md


def test_a_run_trained_with_retrieval_answers_with_its_own_index_and_refuses_without_it(
        tiny_model_dir, data_file, run_dir, tmp_path):
    import shutil

    from hust_sft import retrieval
    from hust_sft.settings import RunSettings, to_dict

    run = tmp_path / "rag-run"
    shutil.copytree(run_dir / "adapter", run / "adapter")
    rs = RunSettings()
    set_values(rs, {"data": str(data_file), "val_ratio": 0.1, "test_ratio": 0.5, "model": str(tiny_model_dir),
                    "retrieval": "train", "retrieval_k": 1, "answer_k": 2, "passage_max_chars": 60})
    (run / "settings.json").write_text(json.dumps(to_dict(rs)), encoding="utf-8")
    records, _ = load_records(data_file)
    own = retrieval.Retriever.build(records[:4])          # not the training split: tells the run's own apart
    own.save(run / "retrieval")
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run)], output=str(tmp_path / "ev"), limit=2,
                     arms=["tuned+retrieval"])
    report = evaluate(s)
    assert report.summary["arm_info"]["rag-run+retrieval"]["retrieval"] == {
        "origin": "run", "k": 2, "passage_max_chars": 60, "min_relevance": rs.retrieval.min_relevance,
        "off_topic": "base", "passages": 4, "sha256": own.sha256}
    for r in report.rows:
        found = own.search(r["question"], 2, min_relevance=rs.retrieval.min_relevance)
        assert r["passages"] == ([{**p.to_dict(), "source": f"qa.jsonl:{p.source.rsplit(':', 1)[1]}"}
                                  for p in found] if found else None)
        assert r["answered_by"] == ("rag-run" if found else "base") and r["off_topic"] == (not found)

    shutil.rmtree(run / "retrieval")
    for arms in (["tuned+retrieval"], ["tuned"]):         # never answered without its index, even plainly
        with pytest.raises(retrieval.RetrievalError) as e:
            evaluate(settings_for(tiny_model_dir, data_file, adapter=[str(run)], output=str(tmp_path / "ev2"),
                                  limit=2, arms=arms))
        assert str(run / "retrieval") in str(e.value)
    assert not (tmp_path / "ev2" / "per_example.jsonl").exists()


def test_arms_must_be_known_and_one_must_remain(tiny_model_dir, data_file, tmp_path):
    from hust_sft.settings import SettingsError

    with pytest.raises(SettingsError, match="arms: expected one of base, base\\+retrieval, tuned, "
                                            "tuned\\+retrieval, got 'retrieval'"):
        set_values(EvalSettings(), {"arms": ["base", "retrieval"]})
    with pytest.raises(EvalError, match="no arm to evaluate"):
        evaluate(settings_for(tiny_model_dir, data_file, arms=["tuned"], output=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()


def test_limit_and_base_only_and_output_folder(tiny_model_dir, data_file, tmp_path):
    s = settings_for(tiny_model_dir, data_file, limit=2, output=str(tmp_path / "out"))
    report = evaluate(s)
    assert report.summary["arms"] == ["base"] and report.summary["splits"]["test"]["n"] == 2
    assert (tmp_path / "out" / "summary.md").is_file()


def test_a_quick_limited_evaluation_never_replaces_the_full_one(tiny_model_dir, data_file, run_dir):
    full = evaluate(settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)]))
    before = (run_dir / "eval" / "summary.json").read_bytes()
    quick = evaluate(settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], limit=1))
    assert full.output_dir == run_dir / "eval" and quick.output_dir == run_dir / "eval-first1"
    assert (run_dir / "eval" / "summary.json").read_bytes() == before
    assert json.loads((quick.output_dir / "summary.json").read_text(encoding="utf-8"))["splits"]["test"]["n"] == 1


def test_a_preloaded_model_is_used_as_is_no_second_copy_loaded(tiny_model_dir, data_file, run_dir, tmp_path,
                                                               monkeypatch):
    from hust_sft import modeling

    own = evaluate(settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], limit=3,
                                output=str(tmp_path / "own")))
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], limit=3, output=str(tmp_path / "shared"))
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = modeling.load_adapters(modeling.load_base_model(s.model), [str(run_dir)], ["cached"])

    def refuse(*a, **k):
        raise AssertionError("evaluate() loaded weights although it was given a model")
    for name in ("load_base_model", "load_tokenizer", "load_adapters"):
        monkeypatch.setattr(modeling, name, refuse)
    with pytest.raises(ValueError, match="one adapter name per settings.adapter"):
        evaluate(s, model=model, tokenizer=tokenizer)
    report = evaluate(s, model=model, tokenizer=tokenizer, adapter_names=["cached"])
    assert [r["answer"] for r in report.rows] == [r["answer"] for r in own.rows]
    assert report.summary["arms"] == ["base", "lora-r4.test"] and report.summary["dtype"] == "float32"
    assert model.active_adapter == "cached"


def test_sampling_is_refused_before_any_work(tiny_model_dir, data_file, tmp_path):
    with pytest.raises(EvalError, match="temperature is 0.7"):
        evaluate(settings_for(tiny_model_dir, data_file, temperature=0.7, output=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()


def test_model_names_are_run_names_and_unique():
    assert model_names(["runs/a", "runs/a/adapter", "x/base", "owner/repo"]) == ["a", "a-2", "base-2", "repo"]


def test_summarize_diff_is_arm_minus_against_with_identical_share():
    def row(arm, i, value, answer):
        return {"arm": arm, "qid": f"test-{i}", "split": "test", "answer": answer, "new_tokens": 2,
                "scores": {k: value for k in metrics.METRICS}}
    rows = [row("base", i, 0.25, "a") for i in range(4)] + [row("t", i, 0.75, "a" if i == 0 else "b")
                                                             for i in range(4)]
    rows[0]["scores"]["keyword_recall"] = None
    s = summarize(rows, ["base", "t"], [("t", "base")], n_boot=100)["test"]
    assert s["n"] == 4 and s["means"]["t"]["token_f1"] == 0.75
    (c,) = s["comparisons"]
    assert c["metrics"]["bleu4"] == {"diff": 0.5, "lo": 0.5, "hi": 0.5, "n": 4}
    assert c["metrics"]["keyword_recall"]["n"] == 3 and c["identical"] == 0.25
    assert s["behaviour"]["t"] == {"n": 4, "looping": 0, "off_topic": 0, "answered_by_base": 0, "with_invented": 0,
                                  "mean_chars": 1.0, "mean_new_tokens": 2.0}


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_cli_help_documents_every_flag():
    out = cli("--help")
    assert out.returncode == 0
    for flag in ("--model", "--adapter", "--data", "--ood", "--output", "--max-new-tokens", "--batch-size",
                 "--limit", "--bootstrap", "--train-sample"):
        assert flag in out.stdout
    assert "repeat to compare several" in out.stdout and "else runs/eval-<time>" in out.stdout


def test_cli_end_to_end(tiny_model_dir, data_file, run_dir, tmp_path):
    out = cli("--model", str(tiny_model_dir), "--data", str(data_file), "--test-ratio", "0.5", "--limit", "2",
              "--adapter", str(run_dir), "--max-new-tokens", "4", "--output", str(tmp_path / "ev"),
              "--arms", "base,tuned", "--arms", "tuned+retrieval", "--train-sample", "0")
    assert out.returncode == 0, out.stderr
    assert "| Token F1 |" in out.stdout and "lora-r4.test − base" in out.stdout
    assert "lora-r4.test+retrieval − base [95% CI]" in out.stdout
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text(encoding="utf-8"))
    assert summary["arms"] == ["base", "lora-r4.test", "lora-r4.test+retrieval"]   # comma-separated or repeated
    assert (tmp_path / "ev" / "per_example.csv").is_file()


def test_cli_refuses_an_unknown_arm():
    out = cli("--arms", "base,tuned+bogus")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert t("settings.error.choice", "en", name="arms", choices="base, base+retrieval, tuned, tuned+retrieval",
             value="tuned+bogus") in out.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/file.jsonl"], "no/such/file.jsonl"),
    (["--batch-size", "0"], "batch_size: expected a value in [1, 128], got 0"),
    (["--temperature", "0.5"], "temperature is 0.5"),
])
def test_cli_user_errors_are_one_line_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ")


def test_retrieval_arms_sharing_an_index_search_each_question_once(tiny_model_dir, data_file, run_dir, tmp_path,
                                                                   tokenizer, monkeypatch):
    """base+retrieval and tuned+retrieval read the same index (the first adapter's): one search per question,
    not one per arm; each arm still decides off topic for itself (only the tuned one has an adapter to bypass)."""
    from hust_sft import retrieval
    from hust_sft.evaluation import plan_evaluation, plan_prompts

    ood = write_pairs(tmp_path / "ood.jsonl", [("校医院在哪里？电话多少？", "东区。"), ("1+1=?", "2")])
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], ood=str(ood), limit=2,
                     output=str(tmp_path / "ev"), arms=["base+retrieval", "tuned+retrieval"])
    plan = plan_evaluation(s, lambda *a, **k: None)
    searched, search = [], retrieval.Retriever.search

    def counting(self, question, *args, **kwargs):
        searched.append(question)
        return search(self, question, *args, **kwargs)
    monkeypatch.setattr(retrieval.Retriever, "search", counting)
    prompts = plan_prompts(s, plan, tokenizer)
    questions = [ex.record.question for ex in plan.examples]
    assert len(questions) == 4 and sorted(searched) == sorted(questions)       # 4 searches, not 8
    tuned_arm = "lora-r4.test+retrieval"
    for ex in plan.examples:
        base, tuned = prompts[("base+retrieval", ex.qid)].asked, prompts[(tuned_arm, ex.qid)].asked
        assert base.passages == tuned.passages and base.off_topic == tuned.off_topic
        assert base.use_adapter is False and tuned.use_adapter == (not tuned.off_topic)
    assert [ex.qid for ex in plan.examples if prompts[(tuned_arm, ex.qid)].asked.off_topic] == [
        "test-0", "test-1", "ood-1"]


def test_off_topic_questions_of_a_retrieval_arm_are_answered_by_the_base_model(
        tiny_model_dir, data_file, run_dir, tmp_path, tokenizer):
    """No passage reaches min_relevance ("1+1=?" shares no word with the handbook): the tuned+retrieval
    arm hands the question to the base model, asked plainly, so its answer is base's word for word; the
    report says how many questions were off topic."""
    from hust_sft import retrieval
    from hust_sft.data.encoding import prompt_ids
    from hust_sft.evaluation import prompt_sha

    ood = write_pairs(tmp_path / "ood.jsonl", [("校医院在哪里？电话多少？", "东区。"), ("1+1=?", "2")])
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], ood=str(ood), limit=2,
                     output=str(tmp_path / "ev"), arms=["base", "tuned", "tuned+retrieval"])
    report = evaluate(s)
    name = "lora-r4.test"
    by = {(r["arm"], r["qid"]): r for r in report.rows}
    records, _ = load_records(data_file)
    index = retrieval.Retriever.build(split_records(records, 0.1, 0.5)["train"])
    defaults = RetrievalSettings()
    off = [qid for qid in ("test-0", "test-1", "ood-0", "ood-1")
           if not index.search(by[("base", qid)]["question"], defaults.answer_k,
                               min_relevance=defaults.min_relevance)]
    assert off == ["test-0", "test-1", "ood-1"]          # the test split shares no word with training
    for qid in ("test-0", "test-1", "ood-0", "ood-1"):
        row, base = by[(f"{name}+retrieval", qid)], by[("base", qid)]
        assert row["off_topic"] == (qid in off)
        if qid in off:
            assert (row["answered_by"], row["passages"]) == ("base", None)
            assert row["prompt_sha"] == base["prompt_sha"] == prompt_sha(prompt_ids(
                tokenizer, [{"role": "user", "content": base["question"]}], s.data.system_prompt))
            assert row["answer"] == base["answer"]
        else:
            assert row["answered_by"] == name and row["passages"]
    assert by[(name, "ood-1")]["answer"] != by[("base", "ood-1")]["answer"]   # the adapter does change answers
    assert t("eval.md.off_topic", "en", arms=t("eval.md.off_topic_arm", "en", arm=f"{name}+retrieval",
                                               n=1, of=2, base=1)) in report.markdown
    assert report.summary["splits"]["ood"]["behaviour"][f"{name}+retrieval"]["off_topic"] == 1
