"""Publishing a run's adapter to the Hugging Face Hub with a model card built from the run directory.

The card's metadata goes through huggingface_hub.ModelCardData, the upload through HfApi. The token is
passed to HfApi only and scrubbed from every error we raise, so it never reaches the UI, a log or a file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hust_sft import runs
from hust_sft.errors import LocalizedError
from hust_sft.hub_ids import HubError, validate_repo_id
from hust_sft.i18n import field_label, t
from hust_sft.paths import strip_paths
from hust_sft.retrieval import META_FILE, RETRIEVAL_DIR, RETRIEVAL_FILES, public_index_files
from hust_sft.settings import DEFAULT_MODEL, RunSettings, fields_of, get_value

CARD_TAGS = ["lora", "peft", "sft", "qwen2"]
# Qwen2.5-0.5B-Instruct is Apache-2.0; an adapter trained on it is published under the same licence.
DEFAULT_LICENSE = "apache-2.0"
EVAL_FILES = ("summary.md", "summary.json", "per_example.csv", "per_example.jsonl")
_HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")
# Settings that are local paths of this machine, meaningless (and private) on a public card.
_LOCAL_SETTINGS = {"output", "runs_dir", "resume", "knowledge_files"}
# Settings that may name a local file or folder: the card shows only its last part (`_public`).
_MAYBE_LOCAL = {"data", "model", "ood", "embedding_model"}
# What a published repo holds: the adapter, its tokenizer, our card, the evaluation and the retrieval
# index (retrieval.RETRIEVAL_FILES, its server paths reduced to file names). Nothing else a run folder may
# hold (training_args.bin, optimizer or RNG states, logs) is staged or uploaded.
PUBLISHED = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json",
             "chat_template.jinja", "README.md")
PUBLISHED_PATTERNS = [*PUBLISHED, "eval/*", *(f"{RETRIEVAL_DIR}/{name}" for name in RETRIEVAL_FILES)]


class Published(str):
    """The repo URL `publish` returns, carrying the export check the upload passed (None when skipped)."""

    check = None


class PublishError(HubError):
    pass


def resolve_token(oauth_token=None) -> str | None:
    """The token of a user logged in with gr.LoginButton (a gr.OAuthToken or its string), else env HF_TOKEN."""
    value = getattr(oauth_token, "token", oauth_token)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return os.environ.get("HF_TOKEN") or None


def scrub(text: str, token: str | None) -> str:
    """`text` with the token, and anything shaped like an HF token, replaced by ***."""
    if token:
        text = text.replace(token, "***")
    return _HF_TOKEN.sub("***", text)


# ---------------------------------------------------------------------------------------------------
# Model card

def _hub_id(value: str | None) -> str | None:
    """`value` if it names a Hub repo (not a local folder, URL or other site), else None."""
    if not value or ("://" in value and not value.startswith("hf://")):
        return None
    value = "/".join(value.removeprefix("hf://").split("/")[:2])
    if Path(value).expanduser().exists() or Path(value).suffix.lower() in (".json", ".jsonl"):
        return None
    try:
        return validate_repo_id(value)
    except (HubError, ValueError):
        return None


def _public(value):
    """A setting or source as a public card shows it: Hub ids and URLs as they are, a local path by its
    last part only (the server's folders are nobody's business)."""
    if not isinstance(value, str) or not value or _hub_id(value) or "://" in value:
        return value
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists() or "/" in value or "\\" in value:
        return p.name or value
    return value


def _cell(value) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ") if value is not None else "–"


def _table(head: tuple[str, str], rows: list[tuple]) -> list[str]:
    return [f"| {head[0]} | {head[1]} |", "|---|---|", *(f"| {_cell(k)} | {_cell(v)} |" for k, v in rows), ""]


def _section(title: str, rows: list[tuple], lang: str,
             head: tuple[str, str] = ("hub.card.item", "hub.card.value")) -> list[str]:
    """A card section: `## <title>` over a two-column table (i18n keys for the title and the heads)."""
    return [f"## {t(title, lang)}", "", *_table((t(head[0], lang), t(head[1], lang)), rows)]


LOAD_SNIPPET = '''```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained({base}, dtype="auto", device_map="auto")
tokenizer = AutoTokenizer.from_pretrained({repo})
model = PeftModel.from_pretrained(base, {repo})

messages = [
    {{"role": "system", "content": {system}}},
    {{"role": "user", "content": {question}}},
]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                       return_tensors="pt").to(model.device)
output = model.generate(**inputs, max_new_tokens=256, do_sample=False)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```'''


MERGED_SNIPPET = '''```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained({repo}, device_map="auto")
tokenizer = AutoTokenizer.from_pretrained({repo})

messages = [{{"role": "user", "content": {question}}}]  # the template adds the system prompt used in training
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                       return_tensors="pt").to(model.device)
output = model.generate(**inputs, max_new_tokens=256)  # generation_config: greedy, stops at <|im_end|>
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```'''


def export_check_lines(check, lang: str) -> list[str]:
    """The model card's statement of the export check (hust_sft.export): what was compared and the result."""
    if check is None:
        return [t("hub.card.export_unchecked", lang)]
    lines = [t("hub.card.export_check", lang, total=check.total, identical=check.identical,
               tokens=check.max_new_tokens, split=check.split, dtype=check.exported_dtype or "?",
               device=check.device or "?")]
    lines += [f"- {t('export.problem.' + p, lang).strip()}" for p in check.problems]
    return lines


@dataclass(frozen=True)
class _CardFacts:
    """What the card says of a run, read once: run.json, the settings, and the published index's meta.json."""
    run_dir: Path
    run: dict            # run.json ({} for a run without one)
    settings: RunSettings
    index_meta: dict     # the published copy's meta.json ({} without an index)

    @classmethod
    def read(cls, run_dir: Path, index_files: dict[str, bytes] | None) -> _CardFacts:
        try:  # the published copy's meta.json: its sha256 is of the passages as uploaded (file names only)
            if index_files is None:
                index_files = public_index_files(run_dir / RETRIEVAL_DIR)
            meta = json.loads(index_files.get(META_FILE) or b"{}")
        except (OSError, ValueError):
            meta = {}
        return cls(run_dir, runs.read_run_json(run_dir) or {}, runs.load_settings(run_dir) or RunSettings(), meta)

    @property
    def data(self) -> dict:
        return self.run.get("data") or {}

    @property
    def base(self) -> str:
        return self.settings.model.model or DEFAULT_MODEL

    @property
    def source(self):
        return _public(self.data.get("source") or self.settings.data.data)


def model_card(run_dir: str | Path, repo_id: str, *, lang: str = "en", license: str = DEFAULT_LICENSE,
               merged: bool = False, export_check=None, index_files: dict[str, bytes] | None = None) -> str:
    """README.md for the adapter (or merged model) repo: Hub metadata, how to load it, data, training figures,
    settings, retrieval, the export check, eval.

    `index_files`: the published retrieval/ files (`retrieval.public_index_files`) when the caller built them
    already (`publish` uploads the same bytes the card describes)."""
    from huggingface_hub import ModelCard

    facts = _CardFacts.read(Path(run_dir), index_files)
    sections = [_card_header(facts, repo_id, lang), _card_loading(facts, repo_id, lang, merged),
                _card_data(facts, lang), _card_training(facts, lang), _card_settings(facts, lang),
                _card_retrieval(facts, lang), _card_export_check(export_check, lang), _card_evaluation(facts, lang)]
    body = "\n".join(line for section in sections for line in section).rstrip() + "\n"
    return str(ModelCard(f"---\n{_card_metadata(facts, license, merged)}\n---\n\n{body}"))


def _card_metadata(facts: _CardFacts, license: str, merged: bool) -> str:
    """The front matter, through huggingface_hub's ModelCardData: base model and dataset only when they are
    Hub ids (no dead links)."""
    from huggingface_hub import ModelCardData

    dataset = _hub_id(facts.settings.data.data)
    return ModelCardData(base_model=_hub_id(facts.base), library_name="transformers" if merged else "peft",
                         datasets=[dataset] if dataset else None, license=license, tags=list(CARD_TAGS),
                         pipeline_tag="text-generation").to_yaml()


def _card_header(facts: _CardFacts, repo_id: str, lang: str) -> list[str]:
    intro = t("hub.card.intro", lang, base=_public(facts.base), data=facts.source)
    return [f"# {repo_id.split('/')[-1]}", "", intro, ""]


def _card_loading(facts: _CardFacts, repo_id: str, lang: str, merged: bool) -> list[str]:
    """How to load it: the adapter over its base, or the merged model alone (its template holds the prompt)."""
    values = {"base": _public(facts.base), "repo": repo_id, "system": facts.settings.data.system_prompt,
              "question": t("hub.card.example_question", lang)}
    snippet = (MERGED_SNIPPET if merged else LOAD_SNIPPET).format(  # values as valid Python strings
        **{k: json.dumps(v, ensure_ascii=False) for k, v in values.items()})
    return [f"## {t('hub.card.load', lang)}", "",
            t("hub.card.load_note_merged" if merged else "hub.card.load_note", lang), "", snippet, ""]


def _card_data(facts: _CardFacts, lang: str) -> list[str]:
    data, splits = facts.data, facts.data.get("split_sizes") or {}
    return _section("hub.card.data", [
        (t("hub.card.source", lang), facts.source),
        ("sha256", f"`{data['sha256']}`" if data.get("sha256") else None),
        (t("hub.card.splits", lang), " / ".join(str(splits.get(k, "–")) for k in ("train", "validation", "test"))
         if splits else None),
    ], lang)


def _card_training(facts: _CardFacts, lang: str) -> list[str]:
    """The run's figures: run.json's where training wrote them, else its events (`runs.summarize_run`)."""
    run, summary = facts.run, runs.summarize_run(facts.run_dir)
    versions = run.get("versions") or {}
    return _section("hub.card.training", [
        (t("hub.card.status", lang), summary.status),
        (t("hub.card.steps", lang), f"{summary.steps} / {summary.total_steps}" if summary.steps else None),
        (t("hub.card.epochs", lang), run.get("epoch")),
        (t("hub.card.train_loss", lang), summary.train_loss),
        (t("hub.card.val_loss", lang), summary.val_loss),
        (t("hub.card.wall_time", lang), f"{summary.wall_time_s / 60:.1f} min" if summary.wall_time_s else None),
        (t("hub.card.peak_memory", lang), f"{run['peak_memory_mb']:,.0f} MB" if run.get("peak_memory_mb") else None),
        (t("hub.card.trainable", lang), f"{run['trainable_params']:,} / {run['total_params']:,}"
         if run.get("trainable_params") and run.get("total_params") else None),
        (t("hub.card.device", lang), " / ".join(str(run[k]) for k in ("device", "dtype", "mixed_precision")
                                                if run.get(k)) or None),
        (t("hub.card.versions", lang), ", ".join(f"{k} {v}" for k, v in versions.items()) or None),
    ], lang)


def _card_settings(facts: _CardFacts, lang: str) -> list[str]:
    """Every setting but this machine's paths; a setting that may name a local file shows its last part."""
    settings = facts.settings
    return _section("hub.card.settings", [
        (f"{field_label(name, lang) if _has_label(name) else name} (`{name}`)",
         _public(get_value(settings, name)) if name in _MAYBE_LOCAL else get_value(settings, name))
        for name, _, _ in fields_of(settings) if name not in _LOCAL_SETTINGS],
        lang, head=("hub.card.setting", "hub.card.value"))


def _card_retrieval(facts: _CardFacts, lang: str) -> list[str]:
    """How this adapter retrieves: its mode and k, and the published retrieval/ index (what Chat and the
    evaluation's retrieval arms searched), or that an index is built from the training split."""
    r, meta = facts.settings.retrieval, facts.index_meta
    knowledge = [k.get("file", "") for k in meta.get("knowledge_files") or []]
    lines = _section("hub.card.retrieval", [
        (f"{field_label('retrieval', lang)} (`retrieval`)", r.retrieval),
        (f"{field_label('retrieval_k', lang)} (`retrieval_k`)", r.retrieval_k),
        (f"{field_label('answer_k', lang)} (`answer_k`)", r.answer_k),
        (f"{field_label('passage_max_chars', lang)} (`passage_max_chars`)", r.passage_max_chars),
        (f"{field_label('answer_passage_chars', lang)} (`answer_passage_chars`)",
         r.answer_passage_chars or r.passage_max_chars),
        (f"{field_label('min_relevance', lang)} (`min_relevance`)", r.min_relevance),
        (f"{field_label('off_topic', lang)} (`off_topic`)", r.off_topic),
        (f"{field_label('embedding_model', lang)} (`embedding_model`)", _public(r.embedding_model) or None),
        (t("hub.card.retrieval_index", lang), t("hub.card.retrieval_index_value", lang,
                                                passages=meta.get("passages"), library=meta.get("library"))
         if meta else t("hub.card.retrieval_no_index", lang)),
        ("sha256", f"`{meta['sha256']}`" if meta.get("sha256") else None),
        (t("hub.card.retrieval_knowledge", lang), ", ".join(knowledge) or None),
    ], lang)
    lines += [t("hub.card.retrieval_note" if meta else "hub.card.retrieval_note_built", lang), ""]
    return lines


def _card_export_check(check, lang: str) -> list[str]:
    return [f"## {t('hub.card.export_check_title', lang)}", "", *export_check_lines(check, lang), ""]


def _card_evaluation(facts: _CardFacts, lang: str) -> list[str]:
    """The run's eval/summary.md, one heading level down under ours; its warnings may quote local paths."""
    lines = [f"## {t('hub.card.evaluation', lang)}", ""]
    summary_md = facts.run_dir / runs.EVAL_DIR / "summary.md"
    if not summary_md.is_file():
        return [*lines, t("hub.card.no_eval", lang)]
    return [*lines, *(("#" + line if line.startswith("#") else strip_paths(line))
                      for line in summary_md.read_text(encoding="utf-8").splitlines())]


def _has_label(name: str) -> bool:
    try:
        field_label(name, "en")
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------------------------------------------
# Upload

def _pairs_text(differing: list[dict], limit: int = 3) -> str:
    return " | ".join(f"{d['question']!r}: app {d['in_app'][:80]!r} vs export {d['exported'][:80]!r}"
                      for d in differing[:limit]) or "-"


def _stage(run_dir: Path, card: str, stage: Path, index_files: dict[str, bytes] | None = None) -> None:
    """The PUBLISHED adapter files + our README.md + eval files + retrieval/ in a temporary folder; the run
    folder is never changed."""
    for item in (run_dir / runs.ADAPTER_DIR).iterdir():
        if item.is_file() and item.name in PUBLISHED:
            shutil.copy2(item, stage / item.name)
    _stage_eval(run_dir, card, stage, index_files)


def _stage_eval(run_dir: Path, card: str, stage: Path, index_files: dict[str, bytes] | None = None) -> None:
    """Our README.md over PEFT's stub, the evaluation files under eval/ and the retrieval index under
    retrieval/ (`index_files`, else `retrieval.public_index_files`: the RETRIEVAL_FILES only)."""
    (stage / "README.md").write_text(card, encoding="utf-8")  # replaces PEFT's auto-generated stub
    # The index Chat and the evaluation searched: the same passages for Hub users, without server paths.
    if index_files is None:
        index_files = public_index_files(run_dir / RETRIEVAL_DIR)
    for name, data in index_files.items():
        (stage / RETRIEVAL_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / RETRIEVAL_DIR / name).write_bytes(data)
    eval_dir = run_dir / runs.EVAL_DIR
    for name in EVAL_FILES:
        if (eval_dir / name).is_file():
            (stage / "eval").mkdir(exist_ok=True)
            shutil.copy2(eval_dir / name, stage / "eval" / name)


def publish(run_dir: str | Path, repo_id: str, token: str | None, *, private: bool = False,
            endpoint: str | None = None, lang: str = "en", merged: bool = False, check_n: int | None = None,
            cache=None) -> str:
    """Create (or reuse) the model repo and upload the adapter (or the merged model) with its card; returns
    the repo URL.

    The upload is an export (hust_sft.export: the training system prompt as the template's default, EOS
    <|im_end|>), checked first: `check_n` test questions are answered by the export reloaded as a user would
    and by the app; any difference refuses the push (PublishError) and nothing reaches the Hub. `check_n=0`
    skips the check (adapter only; the card then says it was not checked). `cache` is the app's
    serving.ModelCache, so the check reuses the loaded base. `endpoint` is for a self-hosted Hub mirror.
    """
    from huggingface_hub import HfApi

    from hust_sft import export as exporting

    check_n = exporting.DEFAULT_CHECK_N if check_n is None else check_n

    run_dir = Path(run_dir)
    repo_id = validate_repo_id(repo_id)
    if not token:
        raise PublishError("hub.error.no_token")
    if not runs.has_adapter(run_dir):
        raise PublishError("hub.error.no_adapter", path=run_dir / runs.ADAPTER_DIR)
    with tempfile.TemporaryDirectory(prefix="hust-sft-publish-") as stage:
        check = None
        exported = merged or check_n > 0
        if exported:
            try:
                exporting.export(run_dir, stage, kind="merged" if merged else "adapter")
                if check_n > 0:
                    check = exporting.check_export(run_dir, stage, n=check_n, cache=cache)
            except LocalizedError as e:
                raise PublishError("hub.error.export", error=scrub(e.text(lang), token)) from None
            except Exception as e:  # noqa: BLE001 - a model or data the libraries cannot load: named, not raised raw
                raise PublishError("hub.error.export", error=scrub(f"{type(e).__name__}: {e}", token)) from None
            if check is not None and not check.passed:
                raise PublishError("hub.error.export_differs", identical=check.identical, total=check.total,
                                   problems=", ".join(check.problems) or "-",
                                   pairs=_pairs_text(check.differing))
        index = public_index_files(run_dir / RETRIEVAL_DIR)  # built once: the card describes the bytes staged
        card = model_card(run_dir, repo_id, lang=lang, merged=merged, export_check=check, index_files=index)
        (_stage_eval if exported else _stage)(run_dir, card, Path(stage), index)  # an export holds the adapter
        try:
            api = HfApi(endpoint=endpoint, token=token)
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=repo_id, folder_path=stage, repo_type="model",
                              allow_patterns=PUBLISHED_PATTERNS,
                              commit_message=t("hub.commit_message", "en", run=run_dir.name))
        except Exception as e:  # any Hub/network error; `from None` keeps the original (and its request) out
            message = scrub(f"{type(e).__name__}: {e}", token)
            raise PublishError("hub.error.publish", repo_id=repo_id, message=message) from None
    published = Published(str(url))
    published.check = check
    return published
