"""evaluate() and evaluate.py end to end on the tiny model with a real (perturbed) LoRA adapter."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hust_sft import metrics
from hust_sft.data import split_records
from hust_sft.data.formats import load_records
from hust_sft.evaluation import EvalError, evaluate, model_names, summarize
from hust_sft.settings import EvalSettings, set_values

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


def settings_for(tiny_model_dir, data_file, **values):
    s = EvalSettings()
    set_values(s, {"model": str(tiny_model_dir), "data": str(data_file), "val_ratio": 0.1, "test_ratio": 0.5,
                   "max_new_tokens": 6, "batch_size": 4, "bootstrap": 200, **values})
    return s


def test_evaluate_writes_all_four_files(tiny_model_dir, data_file, ood_file, run_dir):
    s = settings_for(tiny_model_dir, data_file, adapter=[str(run_dir)], ood=str(ood_file))
    seen = []
    report = evaluate(s, progress=lambda f, msg: seen.append((f, msg)))

    out = run_dir / "eval"                                       # default: <run dir>/eval
    assert report.output_dir == out
    assert sorted(p.name for p in out.iterdir()) == sorted(report.files)
    records, _ = load_records(data_file)
    n_test = len(split_records(records, 0.1, 0.5)["test"])
    assert 0 < n_test < len(QA)

    rows = [json.loads(line) for line in (out / "per_example.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["split"] for r in rows] == ["test"] * n_test + ["ood"] * 2
    name = "lora-r4.test"
    expected_cols = ["split", "index", "source_line", "question", "reference", "keywords",
                     "answer:base", f"answer:{name}"] + [f"{k}:{m}" for m in ("base", name) for k in metrics.METRICS]
    assert list(rows[0]) == expected_cols
    assert any(r[f"answer:{name}"] != r["answer:base"] for r in rows)      # the adapter really answers
    for r in rows:                                                         # scores are of the answers shown
        assert r[f"token_f1:{name}"] == metrics.token_f1(r[f"answer:{name}"], r["reference"])
    with open(out / "per_example.csv", encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and list(table[0]) == expected_cols
    assert table[-1]["question"] == "1+1=?" and table[-1]["reference"] == "2"

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["models"] == ["base", name]
    assert set(summary["splits"]) == {"test", "ood"} and summary["splits"]["ood"]["n"] == 2
    diff = summary["splits"]["test"]["vs_base"][name]["token_f1"]
    mean_base = summary["splits"]["test"]["means"]["base"]["token_f1"]
    mean_tuned = summary["splits"]["test"]["means"][name]["token_f1"]
    assert diff["diff"] == pytest.approx(mean_tuned - mean_base) and diff["lo"] <= diff["diff"] <= diff["hi"]
    assert diff["n"] == n_test
    res = summary["resources"]
    assert res["base"]["tokens_per_s"] > 0 and res["base"]["peak_memory_mb"] > 0
    assert res[name]["wall_time_s"] == 12.5 and res[name]["trainable_params"] == 4096
    assert res[name]["adapter_size_mb"] > 0
    assert summary["data"]["test"]["n"] == n_test and len(summary["data"]["test"]["sha256"]) == 64

    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md == report.markdown and f"{name} − base [95% CI]" in md and "Token F1" in md
    assert seen[-1][0] == 1.0 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_limit_and_base_only_and_output_folder(tiny_model_dir, data_file, tmp_path):
    s = settings_for(tiny_model_dir, data_file, limit=2, output=str(tmp_path / "out"))
    report = evaluate(s)
    assert report.summary["models"] == ["base"] and report.summary["splits"]["test"]["n"] == 2
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
    answers = [{k: v for k, v in r.items() if k.startswith("answer:")} for r in report.rows]
    assert answers == [{k: v for k, v in r.items() if k.startswith("answer:")} for r in own.rows]
    assert report.summary["models"] == ["base", "lora-r4.test"] and report.summary["dtype"] == "float32"
    assert model.active_adapter == "cached"


def test_sampling_is_refused_before_any_work(tiny_model_dir, data_file, tmp_path):
    with pytest.raises(EvalError, match="temperature is 0.7"):
        evaluate(settings_for(tiny_model_dir, data_file, temperature=0.7, output=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()


def test_model_names_are_run_names_and_unique():
    assert model_names(["runs/a", "runs/a/adapter", "x/base", "owner/repo"]) == ["a", "a-2", "base-2", "repo"]


def test_summarize_diff_is_tuned_minus_base():
    rows = [{"split": "test", **{f"{k}:base": 0.25 for k in metrics.METRICS},
             **{f"{k}:t": 0.75 for k in metrics.METRICS}} for _ in range(4)]
    rows[0]["keyword_recall:base"] = None
    s = summarize(rows, ["base", "t"], n_boot=100)["test"]
    assert s["n"] == 4 and s["means"]["t"]["token_f1"] == 0.75
    assert s["vs_base"]["t"]["bleu4"] == {"diff": 0.5, "lo": 0.5, "hi": 0.5, "n": 4}
    assert s["vs_base"]["t"]["keyword_recall"]["n"] == 3


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_cli_help_documents_every_flag():
    out = cli("--help")
    assert out.returncode == 0
    for flag in ("--model", "--adapter", "--data", "--ood", "--output", "--max-new-tokens", "--batch-size",
                 "--limit", "--bootstrap"):
        assert flag in out.stdout
    assert "repeat to compare several" in out.stdout and "else runs/eval-<time>" in out.stdout


def test_cli_end_to_end(tiny_model_dir, data_file, run_dir, tmp_path):
    out = cli("--model", str(tiny_model_dir), "--data", str(data_file), "--test-ratio", "0.5", "--limit", "2",
              "--adapter", str(run_dir), "--max-new-tokens", "4", "--output", str(tmp_path / "ev"))
    assert out.returncode == 0, out.stderr
    assert "| Token F1 |" in out.stdout and "lora-r4.test − base" in out.stdout
    assert (tmp_path / "ev" / "per_example.csv").is_file()


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
