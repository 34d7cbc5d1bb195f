"""Merged / adapter export and the export check: the exported folder, reloaded as a user would, answers like the app."""
from __future__ import annotations

import json

import pytest
from qa_data import write_qa_jsonl

from hust_sft import export
from hust_sft.settings import RunSettings, set_values, to_dict

SYSTEM = '你是"手册"助手。\n只回答手册里的问题。'  # quotes and a newline: the template literal must keep them


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    """A run as training leaves it: settings.json and an adapter whose every LoRA weight is non-zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("export")
    data = write_qa_jsonl(root / "qa.jsonl", 12)
    run = root / "run"
    run.mkdir()
    settings = set_values(RunSettings(), {"data": str(data), "model": str(tiny_model_dir), "system_prompt": SYSTEM,
                                          "val_ratio": 0.0, "test_ratio": 0.5})
    (run / "settings.json").write_text(json.dumps(to_dict(settings), ensure_ascii=False), encoding="utf-8")
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(run / "adapter")
    return run


@pytest.fixture(scope="module")
def merged(run_dir, tmp_path_factory):
    return export.export(run_dir, tmp_path_factory.mktemp("out") / "merged", kind="merged")


def test_template_of_an_export_defaults_to_the_training_system_prompt(merged, run_dir, tokenizer):
    from transformers import AutoTokenizer

    from hust_sft.data.encoding import prompt_ids

    tok = AutoTokenizer.from_pretrained(merged)
    question = [{"role": "user", "content": "问题 3"}]
    ids = tok.apply_chat_template(question, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert list(ids) == prompt_ids(tokenizer, question, SYSTEM)
    # An explicit system turn still wins, as with the original template.
    explicit = [{"role": "system", "content": "other"}] + question
    assert tok.apply_chat_template(explicit, tokenize=False) == tokenizer.apply_chat_template(explicit, tokenize=False)


def test_merged_export_carries_dtype_eos_and_greedy_defaults(merged, tiny_model_dir):
    config = json.loads((merged / "config.json").read_text())
    base = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["dtype"] == base["dtype"] == "float32"
    gen = json.loads((merged / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [151645, 151643] and gen["do_sample"] is False
    assert json.loads((merged / "hust_sft_export.json").read_text())["system_prompt"] == SYSTEM


def test_merged_export_answers_exactly_like_the_app(merged, run_dir):
    result = export.check_export(run_dir, merged, n=4, max_new_tokens=8)
    assert (result.total, result.identical, result.differing, result.problems) == (4, 4, [], [])
    assert result.passed and result.split == "test"
    assert export.read_check(merged).to_dict() == result.to_dict()
    assert json.loads((merged / "export_check.json").read_text())["passed"] is True


def test_the_check_renders_each_app_prompt_once(merged, run_dir, monkeypatch):
    """The app's prompts are rendered for answering and compared with the export's from there, not again."""
    from hust_sft.data import encoding

    renders = []
    render = encoding.prompt_ids

    def counting(*args, **kwargs):
        renders.append(args[1])
        return render(*args, **kwargs)

    monkeypatch.setattr(encoding, "prompt_ids", counting)
    result = export.check_export(run_dir, merged, n=3, max_new_tokens=4)
    assert result.total == 3 and result.problems == []
    assert len(renders) == 3


def test_adapter_export_answers_exactly_like_the_app(run_dir, tmp_path):
    out = export.export(run_dir, tmp_path / "adapter", kind="adapter")
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "generation_config.json",
        "hust_sft_export.json", "tokenizer.json", "tokenizer_config.json"]
    result = export.check_export(run_dir, out, n=3, max_new_tokens=8)
    assert (result.kind, result.total, result.identical, result.problems) == ("adapter", 3, 3, [])


def test_a_template_without_the_training_system_prompt_is_caught_with_the_differing_answers(run_dir, tmp_path,
                                                                                           tiny_model_dir):
    import shutil

    out = export.export(run_dir, tmp_path / "merged", kind="merged")
    # The usual mistake: the base's template, whose default system prompt is Qwen's, not the training one.
    shutil.copy2(tiny_model_dir / "tokenizer_config.json", out / "tokenizer_config.json")
    (out / "chat_template.jinja").unlink()
    result = export.check_export(run_dir, out, n=3, max_new_tokens=8)
    assert result.problems == ["template"] and not result.passed
    assert result.identical < 3 and len(result.differing) == 3 - result.identical
    pair = result.differing[0]
    assert set(pair) == {"question", "in_app", "exported"} and pair["in_app"] != pair["exported"]


def test_a_generation_config_that_does_not_stop_at_im_end_is_caught(run_dir, tmp_path):
    out = export.export(run_dir, tmp_path / "merged", kind="merged")
    gen = json.loads((out / "generation_config.json").read_text())
    gen["eos_token_id"] = 151643  # <|endoftext|> only, as many base configs have it
    (out / "generation_config.json").write_text(json.dumps(gen))
    result = export.check_export(run_dir, out, n=2, max_new_tokens=8)
    assert result.problems == ["eos"] and not result.passed


def test_cli_exports_checks_and_reports(run_dir, tmp_path, capsys):
    code = export.main([str(run_dir), "--merged", str(tmp_path / "m"), "--check", "2", "--max-new-tokens", "4",
                        "--lang", "en"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"merged export written to {tmp_path / 'm'}" in out
    check_file = tmp_path / "m" / "export_check.json"
    assert f"export check: 2/2 answers identical to the app's (details in {check_file})" in out


def test_cli_names_a_run_without_an_adapter(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert export.main([str(tmp_path / "empty"), "--merged", str(tmp_path / "m"), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：") and str(tmp_path / "empty" / "adapter") in err


# ---------------------------------------------------------------------------------------------------
# Publishing goes through the export and its check

TOKEN = "hf_" + "k" * 34


def _offline_hub(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # reach 127.0.0.1:9 and fail there


def test_publish_pushes_only_after_the_check_passes(run_dir, monkeypatch):
    from hust_sft import hub

    _offline_hub(monkeypatch)
    with pytest.raises(hub.PublishError) as err:  # the check passed, so the upload was tried (and refused)
        hub.publish(run_dir, "alice/merged", TOKEN, endpoint="http://127.0.0.1:9", merged=True, check_n=2)
    assert str(err.value).startswith("Publishing to alice/merged failed:")


def test_publish_refuses_a_merged_model_that_answers_differently(tmp_path, monkeypatch):
    """A bf16 base: the merged bf16 weights reloaded as a user would vs the app's fp32 base + adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from hust_sft import demo_model, hub

    base = demo_model.build(tmp_path / "tiny-bf16", dtype="bfloat16")
    run = tmp_path / "run"
    run.mkdir()
    data = write_qa_jsonl(tmp_path / "qa.jsonl", 12)
    settings = set_values(RunSettings(), {"data": str(data), "model": str(base), "system_prompt": SYSTEM,
                                          "val_ratio": 0.0, "test_ratio": 0.5})
    (run / "settings.json").write_text(json.dumps(to_dict(settings), ensure_ascii=False), encoding="utf-8")
    torch.manual_seed(1)
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), lora)
    model.save_pretrained(run / "adapter")
    _offline_hub(monkeypatch)
    with pytest.raises(hub.PublishError) as err:
        hub.publish(run, "alice/merged", TOKEN, endpoint="http://127.0.0.1:9", merged=True, check_n=3)
    assert err.value.key == "hub.error.export_differs"
    assert err.value.params["total"] == 3 and err.value.params["identical"] < 3
    assert "Nothing was pushed" in str(err.value)


def test_model_card_states_the_export_check(run_dir):
    from hust_sft import hub

    check = export.ExportCheck(kind="merged", total=8, identical=8, max_new_tokens=128, exported_dtype="bfloat16",
                               device="cpu")
    card = hub.model_card(run_dir, "alice/m", merged=True, export_check=check)
    assert "**8/8 answers identical** to the answers of the app's own chat" in card
    assert "AutoModelForCausalLM.from_pretrained(\"alice/m\"" in card and "PeftModel" not in card
    assert "published without the export check" in hub.model_card(run_dir, "alice/m")
