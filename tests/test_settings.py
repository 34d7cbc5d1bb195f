"""The settings object is the single source of defaults for train.py, evaluate.py and the UI."""
import argparse
import json

import pytest

from hust_sft import i18n
from hust_sft import settings as S


def parse(cls, argv):
    return S.from_args(cls, S.add_arguments(argparse.ArgumentParser(), cls).parse_args(argv))


def test_cli_defaults_equal_dataclass_defaults():
    assert S.to_dict(parse(S.RunSettings, [])) == S.to_dict(S.RunSettings())
    assert S.to_dict(parse(S.EvalSettings, [])) == S.to_dict(S.EvalSettings())


def test_flags_named_after_fields_and_converted():
    s = parse(S.RunSettings, ["--epochs", "2", "--lora-r", "8", "--target-modules", "attention",
                              "--no-group-by-length", "--resume", "--lr", "1e-4", "--max-steps", "7"])
    assert (s.train.epochs, s.lora.lora_r, s.lora.target_modules) == (2.0, 8, "attention")
    assert (s.train.group_by_length, s.train.resume, s.train.lr, s.train.max_steps) == (False, True, 1e-4, 7)


def test_repeatable_adapter_flag():
    s = parse(S.EvalSettings, ["--adapter", "runs/a", "--adapter", "user/b", "--limit", "5"])
    assert s.adapter == ["runs/a", "user/b"] and s.limit == 5


def test_preset_then_explicit_flag_wins():
    s = parse(S.RunSettings, ["--preset", "tutorial", "--lora-r", "4"])
    assert (s.lora.lora_r, s.lora.lora_alpha, s.lora.target_modules, s.train.lr) == (4, 8, "q_proj,v_proj", 5e-5)


def test_config_file_round_trip(tmp_path):
    original = S.RunSettings()
    S.set_values(original, {"lora_r": 64, "system_prompt": "你是华科助手。", "output": "runs/x"})
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(S.to_dict(original), ensure_ascii=False), encoding="utf-8")
    assert S.to_dict(parse(S.RunSettings, ["--config", str(path)])) == S.to_dict(original)
    assert parse(S.RunSettings, ["--config", str(path), "--lora-r", "2"]).lora.lora_r == 2


@pytest.mark.parametrize("values, message", [
    ({"lora_r": 0}, "lora_r: expected a value in [1, 256], got 0"),
    ({"batch_size": "many"}, "batch_size: expected int, got 'many'"),
    ({"truncation": "cut"}, "truncation: expected one of drop, truncate, got 'cut'"),
    ({"epochs": -1}, "epochs: expected a value in [0.1, 50.0], got -1.0"),
    ({"strict": "maybe"}, "strict: expected bool, got 'maybe'"),
    ({"no_such_knob": 1}, "unknown setting(s): no_such_knob"),
])
def test_bad_values_name_the_field(values, message):
    with pytest.raises(S.SettingsError) as e:
        S.set_values(S.RunSettings(), values)
    assert str(e.value) == message


def test_target_module_presets_and_custom_lists():
    assert S.target_modules_of("q_proj,v_proj") == ["q_proj", "v_proj"]
    assert S.target_modules_of("all-linear") == "all-linear"
    assert S.target_modules_of(" up_proj , down_proj ") == ["up_proj", "down_proj"]
    with pytest.raises(S.SettingsError):
        S.target_modules_of(" , ")


def test_every_setting_has_label_and_help_in_both_languages():
    for cls in (S.RunSettings, S.EvalSettings):
        for name, _, _ in S.fields_of(cls):
            for lang in i18n.LANGS:
                assert i18n.STRINGS[lang].get(f"field.{name}.label"), (lang, name)
                assert i18n.STRINGS[lang].get(f"field.{name}.help"), (lang, name)


def test_help_lists_every_flag_with_default():
    text = S.add_arguments(argparse.ArgumentParser(), S.RunSettings).format_help()
    for flag in ["--data", "--model", "--output", "--epochs", "--max-steps", "--batch-size", "--grad-accum",
                 "--lr", "--lora-r", "--lora-alpha", "--target-modules", "--system-prompt", "--max-length",
                 "--seed", "--resume", "--preset", "--config"]:
        assert flag in text, flag
    assert "(default: 16)" in text
