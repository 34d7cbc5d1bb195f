"""Training keeps the epoch with the lowest validation loss, stops early on request, and trains with
retrieved passages (RAFT) when asked."""
from __future__ import annotations

import json
import random

import pytest
from qa_data import write_qa_jsonl
from safetensors.torch import load_file

from hust_sft import retrieval as R
from hust_sft.settings import RunSettings, set_values
from hust_sft.training import train

CHARS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
         "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
         "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
         "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
         "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
         "必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权"
         "收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信"
         "马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连"
         "断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存"
         "候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严")


@pytest.fixture(scope="module")
def random_answers(tmp_path_factory):
    """12 questions whose answers are random characters: the validation loss first falls (the answer's
    length and script are learnable) and then rises as training memorises the training answers."""
    rng = random.Random(0)
    rows = [{"conversations": [{"role": "user", "content": f"问题 {i}"},
                               {"role": "assistant", "content": "".join(rng.choice(CHARS) for _ in range(10))}]}
            for i in range(12)]
    path = tmp_path_factory.mktemp("data") / "random.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def learnable_model_dir(tmp_path_factory):
    from hust_sft import demo_model

    return demo_model.build(tmp_path_factory.mktemp("models") / "tiny-learnable", initializer_range=0.2)


def settings_for(data, model, **overrides) -> RunSettings:
    values = {"data": str(data), "model": str(model), "system_prompt": "S", "val_ratio": 0.25, "test_ratio": 0.0,
              "max_length": 64, "batch_size": 4, "grad_accum": 1, "logging_steps": 1, "lr": 1e-2,
              "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.0, "epochs": 5.0, "retrieval": "off"}
    values.update(overrides)
    return set_values(RunSettings(), values)


def events_of(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_adapter_kept_is_the_epoch_with_the_lowest_validation_loss(tmp_path, random_answers,
                                                                        learnable_model_dir):
    result = train(settings_for(random_answers, learnable_model_dir, early_stopping_patience=1), run_dir=tmp_path)
    events = events_of(tmp_path)
    evals = [(e["step"], e["eval_loss"]) for e in events if e["type"] == "eval"]
    # 9 training questions, batch 4: 2 steps an epoch. Validation loss falls until epoch 3 (step 6) and
    # rises at epoch 4; patience 1 stops there instead of running all 5 epochs.
    assert [s for s, _ in evals] == [0, 2, 4, 6, 8]
    best_step, best_loss = min(evals[1:], key=lambda e: e[1])
    assert best_step == 6 and evals[-1][1] > best_loss
    assert result.global_step == 8

    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert (run["best_step"], run["best_epoch"], run["best_kept"]) == (6, 3.0, True)
    assert run["best_eval_loss"] == pytest.approx(best_loss)
    assert run["best_reason"] == (f"kept the adapter of step 6 (epoch 3): its validation loss {best_loss:.4f} is "
                                  f"the lowest of 4 epochs (the last one's: {evals[-1][1]:.4f})")
    best_line = [e for e in events if e["type"] == "best"]
    assert len(best_line) == 1 and best_line[0]["step"] == 6 and best_line[0]["message"] == run["best_reason"]
    # The Train tab shows the same line in the page's language.
    from hust_sft import runs
    from hust_sft.ui.train import progress_html

    page = progress_html(runs.progress(tmp_path), "zh")
    assert "保留了第 6 步（第 3 轮）的适配器" in page

    # The best checkpoint outlives the checkpoint limit, and adapter/ holds exactly its weights.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-6", "checkpoint-8"]
    kept = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    best = load_file(tmp_path / "checkpoints" / "checkpoint-6" / "adapter_model.safetensors")
    last = load_file(tmp_path / "checkpoints" / "checkpoint-8" / "adapter_model.safetensors")
    assert kept.keys() == best.keys()
    assert all((kept[k] == best[k]).all() for k in kept)
    assert any((kept[k] != last[k]).any() for k in kept)


def test_without_validation_the_last_step_is_kept_and_run_json_says_why(tmp_path, random_answers, tiny_model_dir):
    train(settings_for(random_answers, tiny_model_dir, val_ratio=0.0, max_steps=1), run_dir=tmp_path)
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert (run["best_step"], run["best_kept"]) == (None, False)
    assert run["best_reason"].startswith("kept the last step's adapter: no validation loss was computed")


def test_retrieval_training_encodes_passages_and_saves_the_index(tmp_path, tiny_model_dir, tokenizer):
    data = write_qa_jsonl(tmp_path / "qa.jsonl", 12)
    plain = train(settings_for(data, tiny_model_dir, max_steps=1, max_length=512, retrieval="off"),
                  run_dir=tmp_path / "plain")
    train(settings_for(data, tiny_model_dir, max_steps=1, max_length=512, retrieval="train", retrieval_k=2,
                       raft_oracle_ratio=0.5), run_dir=tmp_path / "rag")
    run = json.loads((tmp_path / "rag" / "run.json").read_text(encoding="utf-8"))
    n_train = run["data"]["split_sizes"]["train"]
    assert run["retrieval"]["mode"] == "train" and run["retrieval"]["passages"] == n_train
    assert run["retrieval"]["k"] == 2 and run["settings"]["retrieval"]["raft_oracle_ratio"] == 0.5
    assert 0 < run["retrieval"]["train_samples_with_own_pair"] < n_train
    # The same answers are learnt (labels answer-only), each behind a longer, passage-bearing prompt.
    enc_plain, enc_rag = plain.record["data"]["encoding"], run["data"]["encoding"]
    assert enc_rag["train"]["answer_tokens"] == enc_plain["train"]["answer_tokens"]
    assert enc_rag["train"]["tokens"] > enc_plain["train"]["tokens"]
    assert enc_rag["validation"]["tokens"] > enc_plain["validation"]["tokens"]
    retriever = R.for_run(tmp_path / "rag")
    assert retriever.sha256 == run["retrieval"]["sha256"] and len(retriever) == n_train
    assert retriever.settings["retrieval_k"] == 2 and retriever.settings["retrieval"] == "train"
    assert R.for_run(tmp_path / "plain") is None
    assert plain.record["retrieval"] == {"mode": "off"}
    assert [e["type"] for e in events_of(tmp_path / "rag")].count("retrieval") == 1
