"""Exporting a run for use outside this app, and checking that the export answers like the app does.

    python -m hust_sft.export runs/hust --merged out/hust-merged      # base + adapter merged, ready to serve
    python -m hust_sft.export runs/hust --adapter out/hust-adapter    # the adapter alone (for PeftModel)

The most repeated complaint of people who fine-tune with LLaMA-Factory, Unsloth or AutoTrain is that the
exported model answers differently from the in-app chat: the chat template falls back to the base's default
system prompt, generation never stops because `<|im_end|>` is not an EOS token, the dtype changed. So an
export carries: the tokenizer with a chat template whose *default* system prompt is the one used in training
(a user who sends only the question gets the training prompt), a generation_config whose EOS includes
`<|im_end|>` and whose defaults are the app's (greedy), the weights in the base's dtype (or the one asked
for). Then `check_export` reloads the written folder the way a user would — `AutoModelForCausalLM
.from_pretrained` + `apply_chat_template` for a merged model, `PeftModel.from_pretrained` over the base for
an adapter — answers N held-out questions greedily, and compares each answer with the app's own answer
(the serving path: hust_sft.serving + hust_sft.generation). The result is written to OUT/export_check.json;
Publish refuses to push an export whose answers differ and states the result on the model card.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hust_sft import runs
from hust_sft.errors import LocalizedError
from hust_sft.settings import GenerationSettings, ModelSettings, RunSettings

CHECK_FILE = "export_check.json"
EXPORT_FILE = "hust_sft_export.json"
DEFAULT_CHECK_N = 8
DEFAULT_CHECK_TOKENS = 128
KINDS = ("merged", "adapter")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


class ExportError(LocalizedError, ValueError):
    """The run cannot be exported or checked; the message names the folder or file."""


@dataclass
class ExportCheck:
    """How the exported artefact answers compared with the app, question by question (greedy)."""
    kind: str                     # "merged" | "adapter"
    total: int
    identical: int
    differing: list[dict] = field(default_factory=list)   # {"question", "in_app", "exported"}
    # Checked without generating, because a random-weight model may never reach the end of an answer:
    # "template" (the export's prompt tokens differ from the app's), "eos" (generation never stops at <|im_end|>).
    problems: list[str] = field(default_factory=list)
    max_new_tokens: int = DEFAULT_CHECK_TOKENS
    split: str = "test"
    exported_dtype: str | None = None
    in_app_dtype: str | None = None
    device: str | None = None

    @property
    def passed(self) -> bool:
        return self.total > 0 and self.identical == self.total and not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict) -> ExportCheck:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


def run_settings(run_dir: str | Path) -> RunSettings:
    """The settings a run was trained with (run.json's block, else settings.json)."""
    settings = runs.load_settings(run_dir)
    if settings is None:
        raise ExportError("export.error.no_settings", path=run_dir)
    return settings


# ---------------------------------------------------------------------------------------------------
# What an export carries besides weights

def with_default_system_prompt(template: str, system_prompt: str) -> str:
    """`template` whose conversations without a system turn start with `system_prompt`.

    A Jinja assignment before the original template: a top-level `{% set %}` shadows the `messages` the
    caller passed, so every branch of the original (Qwen's own default included) sees the system turn. The
    prompt is a Jinja string literal: JSON's escapes (\\n, \\", \\\\) read the same in Jinja.
    """
    literal = json.dumps(system_prompt, ensure_ascii=False)
    prefix = ("{%- if not messages or messages[0]['role'] != 'system' %}"
              "{%- set messages = [{'role': 'system', 'content': " + literal + "}] + messages %}"
              "{%- endif %}")
    return prefix + template


def export_tokenizer(settings: RunSettings):
    """The base's tokenizer (with our pad token) whose chat template defaults to the training system prompt."""
    from hust_sft.modeling import load_tokenizer

    tok = load_tokenizer(settings.model.model)
    tok.chat_template = with_default_system_prompt(tok.chat_template, settings.data.system_prompt)
    return tok


def generation_config_for(tokenizer, base_config=None, gen: GenerationSettings | None = None):
    """The app's decoding defaults (greedy, no repetition penalty) with EOS = <|im_end|> and <|endoftext|>.

    Qwen2.5's own generation_config samples (temperature 0.7, top_k 20, repetition_penalty 1.05); the app
    answers greedily, so an export that should answer like the app has to say so.
    """
    from transformers import GenerationConfig

    from hust_sft.generation import stop_token_ids

    gen = gen or GenerationSettings()
    config = GenerationConfig(**(base_config.to_diff_dict() if base_config is not None else {}))
    config.eos_token_id = stop_token_ids(tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    config.do_sample = False
    config.temperature = config.top_p = config.top_k = None
    config.repetition_penalty = gen.repetition_penalty
    config.max_new_tokens = gen.max_new_tokens
    return config


def _target_dtype(base: str, requested: str):
    import torch
    from transformers import AutoConfig

    from hust_sft.precision import torch_dtype

    if requested != "auto":
        return torch_dtype(requested)
    dtype = getattr(AutoConfig.from_pretrained(base), "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def export(run_dir: str | Path, out: str | Path, *, kind: str = "merged", dtype: str = "auto") -> Path:
    """Write the run as a merged model (`kind="merged"`) or an adapter folder (`"adapter"`) to `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from hust_sft.modeling import adapter_dir
    from hust_sft.training import library_versions

    run_dir, out = Path(run_dir), Path(out)
    if kind not in KINDS:
        raise ExportError("export.error.kind", kind=kind)
    if not runs.has_adapter(run_dir):
        raise ExportError("export.error.no_adapter", path=run_dir / runs.ADAPTER_DIR)
    if out.resolve() in (run_dir.resolve(), (run_dir / runs.ADAPTER_DIR).resolve()):
        raise ExportError("export.error.inside_run", path=out)
    settings = run_settings(run_dir)
    base = settings.model.model
    tok = export_tokenizer(settings)
    out.mkdir(parents=True, exist_ok=True)
    target = _target_dtype(base, dtype)
    if kind == "merged":
        # Merged in fp32, then cast once: W + BA rounded to the storage dtype a single time.
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, adapter_dir(str(run_dir))).merge_and_unload()
        model = model.to(target)
        model.generation_config = generation_config_for(tok, model.generation_config)
        model.config.use_cache = True
        model.save_pretrained(out)
    else:
        source = Path(adapter_dir(str(run_dir)))
        for name in ADAPTER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, out / name)
        base_gen = None
        try:
            from transformers import GenerationConfig

            base_gen = GenerationConfig.from_pretrained(base)
        except OSError:
            pass
        generation_config_for(tok, base_gen).save_pretrained(out)
    tok.save_pretrained(out)
    (out / EXPORT_FILE).write_text(json.dumps({
        "kind": kind, "run": run_dir.name, "base_model": base, "system_prompt": settings.data.system_prompt,
        "dtype": str(target).removeprefix("torch.") if kind == "merged" else None,
        "versions": library_versions()}, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------------
# The export check

def check_questions(settings: RunSettings, n: int) -> tuple[list[str], str]:
    """The first `n` questions of the run's test split (validation, then train, when it has none)."""
    from hust_sft.data import load_data

    bundle = load_data(settings.data)
    for split in ("test", "validation", "train"):
        if bundle.splits.get(split):
            return [r.question for r in bundle.splits[split][:n]], split
    raise ExportError("export.error.no_questions", source=bundle.path)


def app_prompts(tokenizer, settings: RunSettings, questions: list[str]) -> list[list[int]]:
    from hust_sft.data.encoding import prompt_ids

    return [prompt_ids(tokenizer, [{"role": "user", "content": q}], settings.data.system_prompt) for q in questions]


def in_app_answers(run_dir: Path, settings: RunSettings, questions: list[str], max_new_tokens: int,
                   cache=None) -> tuple[list[str], str, list[list[int]], int | None]:
    """What the app's Chat tab answers (greedy): the serving cache's base + adapter, generation.generate_batch.
    Also the prompt tokens it asked with and its tokenizer's `<|im_end|>` id (None if it has none), which the
    check compares the export's prompts and EOS with: rendered once, here."""
    from hust_sft.generation import generate_batch
    from hust_sft.serving import ModelCache

    cache = cache or ModelCache()
    with cache.hold(settings.model.model, [str(run_dir)]) as held:
        prompts = app_prompts(held.tokenizer, settings, questions)
        im_end = held.tokenizer.get_vocab().get("<|im_end|>")
        with held.batch(held.names[0]) as model:  # the lock for this one batch, answering as the adapter
            results = generate_batch(model, held.tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=1)
            dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return [r.text for r in results], dtype, prompts, im_end


def exported_answers(out: Path, kind: str, base: str, questions: list[str], max_new_tokens: int,
                     device: str) -> tuple[list[str], str, list[list[int]], list[int]]:
    """Answers of the written folder, loaded and prompted as its model card tells a user to; also the prompt
    tokens it built and the EOS ids `generate` stops at."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    if kind == "merged":
        model = AutoModelForCausalLM.from_pretrained(out).to(device)
        extra = {}  # the exported generation_config decides: greedy, stop at <|im_end|>
    else:
        # An adapter fixes no dtype: the user picks one when loading the base. It is checked under the app's
        # (fp32 on a CPU, where a bf16 base would answer differently whoever loaded it).
        from hust_sft.modeling import pick_dtype

        base_model = AutoModelForCausalLM.from_pretrained(base, dtype=pick_dtype(device)).to(device)
        model = PeftModel.from_pretrained(base_model, out)
        extra = {"do_sample": False}  # as the adapter's model card snippet calls generate
    model.eval()
    answers, prompts = [], []
    for question in questions:
        inputs = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         return_dict=True, return_tensors="pt").to(device)
        prompts.append(inputs["input_ids"][0].tolist())
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, **extra)
        answers.append(tok.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return answers, str(next(model.parameters()).dtype).removeprefix("torch."), prompts, eos


def check_export(run_dir: str | Path, out: str | Path, *, n: int = DEFAULT_CHECK_N,
                 max_new_tokens: int = DEFAULT_CHECK_TOKENS, cache=None) -> ExportCheck:
    """Re-answer `n` held-out questions with the export and the app; write and return the comparison."""
    from hust_sft.modeling import pick_device

    run_dir, out = Path(run_dir), Path(out)
    meta_path = out / EXPORT_FILE
    if not meta_path.is_file():
        raise ExportError("export.error.not_an_export", path=out)
    kind = json.loads(meta_path.read_text(encoding="utf-8"))["kind"]
    settings = run_settings(run_dir)
    questions, split = check_questions(settings, n)
    app, app_dtype, app_prompt_ids, im_end = in_app_answers(run_dir, settings, questions, max_new_tokens, cache)
    device = pick_device(ModelSettings().device)
    exported, exported_dtype, prompts, eos = exported_answers(out, kind, settings.model.model, questions,
                                                              max_new_tokens, device)
    problems = []
    if prompts != app_prompt_ids:
        problems.append("template")
    if im_end is not None and im_end not in eos:
        problems.append("eos")
    differing = [{"question": q, "in_app": a, "exported": e} for q, a, e in zip(questions, app, exported) if a != e]
    result = ExportCheck(kind=kind, total=len(questions), identical=len(questions) - len(differing),
                         differing=differing, problems=problems, max_new_tokens=max_new_tokens, split=split,
                         exported_dtype=exported_dtype, in_app_dtype=app_dtype, device=device)
    (out / CHECK_FILE).write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return result


def read_check(out: str | Path) -> ExportCheck | None:
    path = Path(out) / CHECK_FILE
    if not path.is_file():
        return None
    return ExportCheck.from_dict(json.loads(path.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------------
# Command line

def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    from hust_sft.i18n import t

    p = argparse.ArgumentParser(prog="python -m hust_sft.export", description=t("export.cli.description", lang))
    p.add_argument("run", help=t("export.cli.run", lang))
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--merged", metavar="OUT", help=t("export.cli.merged", lang))
    where.add_argument("--adapter", metavar="OUT", help=t("export.cli.adapter", lang))
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help=t("export.cli.dtype", lang))
    p.add_argument("--check", type=int, default=DEFAULT_CHECK_N, metavar="N", help=t("export.cli.check", lang))
    p.add_argument("--max-new-tokens", type=int, default=DEFAULT_CHECK_TOKENS, help=t("export.cli.tokens", lang))
    p.add_argument("--lang", choices=["en", "zh"], default=None, help=t("export.cli.lang", lang))
    return p


def main(argv: list[str] | None = None) -> int:
    from hust_sft.i18n import cli_lang, t

    lang = cli_lang(argv)
    args = build_parser(lang).parse_args(argv)
    kind, out = ("merged", args.merged) if args.merged else ("adapter", args.adapter)
    try:
        path = export(args.run, out, kind=kind, dtype=args.dtype)
        print(t("export.cli.written", lang, kind=kind, path=path))
        if args.check <= 0:
            return 0
        result = check_export(args.run, path, n=args.check, max_new_tokens=args.max_new_tokens)
    except LocalizedError as e:
        print(t("cli.error", lang, error=e.text(lang)), file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as e:  # model/data loading errors of the libraries
        print(t("cli.error", lang, error=f"{type(e).__name__}: {e}"), file=sys.stderr)
        return 2
    print(t("export.cli.check_result", lang, identical=result.identical, total=result.total,
            file=Path(out) / CHECK_FILE))
    for problem in result.problems:
        print(t(f"export.problem.{problem}", lang))
    for pair in result.differing:
        print(t("export.cli.differs", lang, question=pair["question"], in_app=pair["in_app"],
                exported=pair["exported"]))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
