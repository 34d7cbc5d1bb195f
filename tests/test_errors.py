"""One error model: every user-facing error is a LocalizedError — str() English, .text(lang) translated —
and still the builtin type callers caught before (ValueError / RuntimeError)."""
from __future__ import annotations

import pytest

from hust_sft import runs
from hust_sft import settings as S
from hust_sft.data import DataError, DataSourceError, Issue
from hust_sft.data.encoding import EncodingError
from hust_sft.errors import LocalizedError
from hust_sft.modeling import ModelError, pick_mixed_precision
from hust_sft.precision import PrecisionError


@pytest.mark.parametrize("cls, builtin", [
    (DataError, ValueError), (DataSourceError, RuntimeError), (ModelError, RuntimeError),
    (S.SettingsError, ValueError), (EncodingError, ValueError), (runs.RunFileError, ValueError),
    (runs.RunNameError, ValueError), (runs.RunDirError, RuntimeError), (PrecisionError, RuntimeError),
])
def test_every_user_facing_error_is_a_localized_error(cls, builtin):
    assert issubclass(cls, LocalizedError) and issubclass(cls, builtin)


def test_settings_error_reads_in_english_and_in_chinese():
    with pytest.raises(S.SettingsError) as err:
        S.set_values(S.RunSettings(), {"epochs": -1})
    assert str(err.value) == "epochs: expected a value in [0.1, 50.0], got -1.0"
    assert err.value.text("zh") == "epochs：应在 [0.1, 50.0] 范围内，实际为 -1.0"


def test_model_error_reads_in_english_and_in_chinese():
    with pytest.raises(PrecisionError) as err:  # the precision policy's refusals (hust_sft.precision)
        pick_mixed_precision("cpu", "fp16")
    assert str(err.value) == "mixed_precision 'fp16' needs a CUDA GPU; on a CPU use 'bf16' or 'no'"
    assert err.value.text("zh") == "mixed_precision 'fp16' 需要 CUDA GPU；在 CPU 上请用 'bf16' 或 'no'"


def test_data_error_keeps_its_issues_in_both_languages():
    issue = Issue(source="d.jsonl", line=3, field="messages", code="no_assistant")
    err = DataError("data.error.strict", [issue], source="d.jsonl", n=1)
    assert err.issues == [issue]
    english = str(err).splitlines()
    assert english[0].startswith("d.jsonl: ") and english[1] == issue.text("en")
    assert err.text("zh").splitlines()[1] == issue.text("zh") != issue.text("en")


def test_data_source_error_reason_from_a_key_or_a_library():
    keyed = DataSourceError("x.jsonl", key="data.source.not_found")
    assert str(keyed).splitlines()[0] == "Could not load the dataset from x.jsonl: no such file"
    assert keyed.text("zh").splitlines()[0] == "无法从 x.jsonl 加载数据集：文件不存在"
    raw = DataSourceError("http://127.0.0.1/x", "ConnectError: refused")
    assert raw.reason == "ConnectError: refused"
    assert raw.text("zh").splitlines()[0] == "无法从 http://127.0.0.1/x 加载数据集：ConnectError: refused"


def test_run_file_and_run_name_errors_read_in_both_languages(tmp_path):
    (tmp_path / "run.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(runs.RunFileError) as err:
        runs.read_run_json(tmp_path)
    assert str(err.value) == f"{tmp_path / 'run.json'}: expected a JSON object, got list"
    assert err.value.text("zh") == f"{tmp_path / 'run.json'}：应为 JSON 对象，实际为 list"
    with pytest.raises(S.SettingsError) as err:   # a bad run name is a bad setting of the Train tab
        runs.sanitize_run_name("..")
    assert str(err.value).startswith("run name '..': nothing is left")
    assert err.value.text("zh").startswith("运行名称 '..'：")
