"""Every setting of a run, its default and its range, defined once.

`train.py`, `evaluate.py` and the Gradio tabs are all generated from these dataclasses: CLI flags come from
`add_arguments`, UI widgets from `fields_of`, and a run's `run.json` round-trips through `to_dict` /
`from_dict`. Human-readable labels and help texts live in `hust_sft.i18n` (one table per language);
this module holds only names, types, defaults, choices and bounds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from hust_sft.errors import LocalizedError

QWEN25_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
# The HUST handbook on ModelScope, fetched over plain HTTP (see hust_sft.data.sources).
DEFAULT_DATA = "modelscope://alleyf/HUST-Student-Handbook/lora_hust_student_handbookt.jsonl"

TARGET_PRESETS = {
    "q_proj,v_proj": ["q_proj", "v_proj"],
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "all-linear": "all-linear",
}


def opt(default: Any = None, *, choices: list | None = None, min: float | None = None,
        max: float | None = None, step: float | None = None, cli: bool = True, multiple: bool = False,
        default_factory: Any = None, public_max: float | None = None):
    """A dataclass field carrying what a CLI flag and a UI widget need besides text.

    `public_max`: the most a visitor (anyone but the owner of a public Space) may ask for; `None` in a field
    that allows it (e.g. `limit`: "all") means this maximum for them. Enforced by `hust_sft.limits`.
    """
    meta = {"choices": choices, "min": min, "max": max, "step": step, "cli": cli, "multiple": multiple,
            "public_max": public_max}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataSettings:
    data: str = opt(DEFAULT_DATA)
    data_file: str | None = opt(None)
    data_split: str | None = opt(None)
    strict: bool = opt(False)
    val_ratio: float = opt(0.1, min=0.0, max=0.5, step=0.01)
    test_ratio: float = opt(0.1, min=0.0, max=0.5, step=0.01)
    system_prompt: str = opt(QWEN25_SYSTEM_PROMPT)
    max_length: int = opt(1024, min=64, max=8192, step=64)
    truncation: str = opt("drop", choices=["drop", "truncate"])


@dataclass
class ModelSettings:
    model: str = opt(DEFAULT_MODEL)
    dtype: str = opt("auto", choices=["auto", "bf16", "fp16", "fp32"])
    device: str = opt("auto", choices=["auto", "cuda", "cpu", "mps"])


@dataclass
class LoraSettings:
    lora_r: int = opt(16, min=1, max=256, step=1)
    lora_alpha: int = opt(32, min=1, max=512, step=1)
    lora_dropout: float = opt(0.0, min=0.0, max=0.5, step=0.01)
    target_modules: str = opt("all-linear")
    use_rslora: bool = opt(False)
    use_dora: bool = opt(False)


@dataclass
class MemorySettings:
    grad_accum: int = opt(2, min=1, max=128, step=1)
    mixed_precision: str = opt("auto", choices=["auto", "bf16", "fp16", "no"])
    gradient_checkpointing: bool = opt(False)
    quantization: str = opt("none", choices=["none", "4bit", "8bit"])
    answer_only_head: bool = opt(True)


@dataclass
class TrainSettings:
    output: str | None = opt(None)
    runs_dir: str = opt("runs")
    epochs: float = opt(4.0, min=0.1, max=50.0, step=0.5)
    max_steps: int = opt(-1, min=-1, max=100000, step=1)
    batch_size: int = opt(8, min=1, max=256, step=1)
    lr: float = opt(3e-4, min=1e-6, max=1e-2)
    lr_scheduler: str = opt("cosine", choices=["cosine", "linear", "constant_with_warmup"])
    warmup_ratio: float = opt(0.05, min=0.0, max=0.5, step=0.01)
    weight_decay: float = opt(0.0, min=0.0, max=0.5, step=0.01)
    seed: int = opt(42, min=0, max=2**31 - 1, step=1)
    logging_steps: int = opt(5, min=1, max=1000, step=1)
    save_steps: int = opt(0, min=0, max=100000, step=1)
    eval_each_epoch: bool = opt(True)
    early_stopping_patience: int = opt(0, min=0, max=100, step=1)
    group_by_length: bool = opt(True)
    report_to: str = opt("none", choices=["none", "tensorboard", "trackio", "wandb"])
    resume: bool = opt(False)


@dataclass
class RetrievalSettings:
    """Retrieval-augmented answering and training (hust_sft.retrieval); evaluation and chat read a run's."""
    # "train" (RAFT): of the configurations measured on the real 0.5B model (README, "Which configuration
    # answers best"), tuned+retrieval scored highest on held-out facts and is the one that shows its sources.
    retrieval: str = opt("train", choices=["off", "answer", "train"])
    # Passages per training sample; 0: as many as answering uses (answer_k), RAFT as its paper trains: the
    # model learns to pick the right passage among as many distractors as it will see when answering. On the
    # BJTU validation split (README, "Training that keeps what it is shown") k=2 with oracle share 0.5 kept
    # more of the passages' facts (56.7%) than k=2 at 0.8 (51.3%) and looped less (2 vs 5 of 31).
    retrieval_k: int = opt(0, min=0, max=10, step=1)
    # Passages when answering (Chat, evaluation, Blind A/B); 0 in retrieval_k follows it.
    answer_k: int = opt(2, min=1, max=10, step=1)
    # Share of training samples whose passages include their own pair (the oracle). At 0.8 the model learns to
    # copy whatever passage it sees, a neighbouring question's wrong facts included; 0.5 (measured, above).
    raft_oracle_ratio: float = opt(0.5, min=0.0, max=1.0, step=0.05)
    # Characters per passage in training (and the index's chunk size: a longer pair is split into chunks
    # that fit, never cut); 0: derived from the training pairs (hust_sft.passage_size: the 90th-percentile
    # pair, within passage_tokens). answer_passage_chars is the same when answering; 0: as in training.
    passage_max_chars: int = opt(0, min=0, max=2000, step=10)
    answer_passage_chars: int = opt(0, min=0, max=2000, step=10)
    # What all passages of one prompt may take, in tokens (also bounded by what max_length leaves).
    passage_tokens: int = opt(512, min=64, max=4096, step=32)
    knowledge_files: list[str] = opt(multiple=True, default_factory=list)
    # A passage is shown only when it holds this share of the question's word weight (retrieval.relevance).
    # 0.25, chosen on the BJTU validation split: it keeps a passage for 28 of its 31 questions (and for
    # 26 of 26 test questions), and silences 15 of 16 out-of-domain ones (README, "Off-topic questions").
    min_relevance: float = opt(0.25, min=0.0, max=1.0, step=0.05)
    # A question no passage is relevant to: "base" has the base model answer it without passages (the
    # adapter learnt the handbook, not the world: out of domain it answers worse than base, README);
    # "no_passages" has the arm's own model answer with the layout saying nothing was found.
    off_topic: str = opt("base", choices=["base", "no_passages"])
    # Dense retrieval (hust_sft.embedding), fused with BM25 by reciprocal rank: a sentence-embedding model by
    # Hub id or folder, e.g. "BAAI/bge-small-zh-v1.5"; "" (default) is BM25 alone, which needs no download.
    # The off-topic floor stays on BM25's relevance. Measured on BJTU (README, "Retrieval that finds more").
    embedding_model: str = opt("")
    embedding_pooling: str = opt("auto", choices=["auto", "mean", "cls"])
    # Texts put before the question / each passage when embedding, as the model card asks (multilingual-e5:
    # "query: " / "passage: "; bge-*-zh-v1.5: a query instruction, or none).
    embedding_query_prefix: str = opt("")
    embedding_passage_prefix: str = opt("")


@dataclass
class RunSettings:
    """Everything `train.py` and the Train tab take; saved whole into run.json."""
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)


@dataclass
class GenerationSettings:
    max_new_tokens: int = opt(256, min=1, max=4096, step=1, public_max=512)
    temperature: float = opt(0.0, min=0.0, max=2.0, step=0.05)
    top_p: float = opt(0.9, min=0.05, max=1.0, step=0.05)
    repetition_penalty: float = opt(1.0, min=1.0, max=2.0, step=0.05)


@dataclass
class EvalSettings:
    """Everything `evaluate.py` and the Evaluate tab take."""
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    adapter: list[str] = opt(multiple=True, default_factory=list)
    arms: list[str] = opt(multiple=True, choices=["base", "base+retrieval", "tuned", "tuned+retrieval"],
                          default_factory=lambda: ["base", "base+retrieval", "tuned", "tuned+retrieval"])
    ood: str | None = opt(None)
    # The held-out split answered: "test" to report, "validation" to choose settings without looking at test.
    split: str = opt("test", choices=["test", "validation"])
    output: str | None = opt(None)
    batch_size: int = opt(8, min=1, max=128, step=1, public_max=8)
    limit: int | None = opt(None, min=1, max=100000, step=1, public_max=50)
    bootstrap: int = opt(2000, min=100, max=100000, step=100, public_max=2000)
    train_sample: int = opt(20, min=0, max=1000, step=1, public_max=50)


# Blind A/B answers are sampled (with a secret seed per answer, see hust_sft.serving), never greedy: a
# greedy pair could be matched against /chat's greedy base answer to tell the tuned side without reading.
ARENA_TEMPERATURE = 0.7
ARENA_TOP_P = 0.9


def arena_generation(max_new_tokens: int | None = None) -> GenerationSettings:
    """How Blind A/B answers are generated: the chat defaults (or `max_new_tokens`), sampled."""
    gen = GenerationSettings(temperature=ARENA_TEMPERATURE, top_p=ARENA_TOP_P)
    if max_new_tokens is not None:
        gen.max_new_tokens = max_new_tokens
    return gen


# Named presets a user can pick instead of setting each knob. "tutorial" is the recipe most blog posts
# copy (kept for honest comparison); "recommended" is our defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "recommended": {},
    "tutorial": {
        "lora_r": 8, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": "q_proj,v_proj",
        "lr": 5e-5, "epochs": 3.0, "batch_size": 4, "grad_accum": 8, "max_length": 512,
        "lr_scheduler": "linear", "warmup_ratio": 0.0, "answer_only_head": False, "group_by_length": False,
        "retrieval": "off",
    },
}


# ---------------------------------------------------------------------------------------------------
# Generic machinery: walk nested dataclasses, build argparse flags, (de)serialise.

def _is_group(f: dataclasses.Field) -> bool:
    return dataclasses.is_dataclass(f.type) or (isinstance(f.default_factory, type)
                                                and dataclasses.is_dataclass(f.default_factory))


def fields_of(obj_or_cls) -> list[tuple[str, dataclasses.Field, type]]:
    """(name, field, python type) of every leaf setting, nested groups flattened, in declaration order."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if _is_group(f):
            out.extend(fields_of(f.default_factory))
        else:
            out.append((f.name, f, hints[f.name]))
    return out


def _base_type(tp) -> type:
    args = [a for a in getattr(tp, "__args__", ()) if a is not type(None)]
    if getattr(tp, "__origin__", None) is list:
        return list
    return args[0] if args else tp


def get_value(settings, name: str):
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == name and not dataclasses.is_dataclass(value):
            return value
        if dataclasses.is_dataclass(value):
            try:
                return get_value(value, name)
            except KeyError:
                pass
    raise KeyError(name)


def set_values(settings, values: dict[str, Any]):
    """Set leaf settings by flat name, converting and range-checking each; unknown names raise."""
    leaves = {name: (f, tp) for name, f, tp in fields_of(settings)}
    unknown = sorted(set(values) - set(leaves))
    if unknown:
        raise SettingsError("settings.error.unknown", names=", ".join(unknown))
    for name, value in values.items():
        f, tp = leaves[name]
        _assign(settings, name, coerce(name, value, f, tp))
    return settings


def _assign(settings, name, value) -> bool:
    for f in dataclasses.fields(settings):
        current = getattr(settings, f.name)
        if dataclasses.is_dataclass(current):
            if _assign(current, name, value):
                return True
        elif f.name == name:
            setattr(settings, name, value)
            return True
    return False


class SettingsError(LocalizedError, ValueError):
    """A setting's value cannot be used; the message names the setting and what was expected."""


def coerce(name: str, value: Any, f: dataclasses.Field, tp) -> Any:
    """Convert a raw value (CLI string, UI widget value, JSON) to the field's type and check its range."""
    base = _base_type(tp)
    optional = type(None) in getattr(tp, "__args__", ())
    meta = f.metadata
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise SettingsError("settings.error.required", name=name)
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                value = value.lower() in ("1", "true", "yes", "on")
            else:
                value = bool(value)
        elif base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = int(value)
        elif base is float:
            value = float(value)
        elif base is list:
            value = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise SettingsError("settings.error.type", name=name, type=base.__name__, value=value) from None
    if base is float and not math.isfinite(value):  # NaN passes every range check below
        raise SettingsError("settings.error.not_finite", name=name, value=value)
    if meta.get("choices") and base is list:  # each item one of the choices (e.g. evaluation arms)
        # "a,b" is two items ("--arms base,tuned" as well as "--arms base --arms tuned"); repeats count once.
        value = list(dict.fromkeys(p.strip() for v in value for p in v.split(",") if p.strip()))
        for item in value:
            if item not in meta["choices"]:
                raise SettingsError("settings.error.choice", name=name,
                                    choices=", ".join(map(str, meta["choices"])), value=item)
    elif meta.get("choices") and value not in meta["choices"]:
        raise SettingsError("settings.error.choice", name=name, choices=", ".join(map(str, meta["choices"])),
                            value=value)
    if base in (int, float):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SettingsError("settings.error.range", name=name, lo=lo, hi=hi, value=value)
    return value


def to_dict(settings) -> dict:
    return dataclasses.asdict(settings)


def from_dict(cls, data: dict):
    """Rebuild settings from `to_dict` output, or a run.json (its "settings" block); missing keys take
    today's defaults."""
    if isinstance(data.get("settings"), dict):
        data = data["settings"]
    obj = cls()
    flat = {}

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            else:
                flat[k] = v
    walk(data)
    known = {name for name, _, _ in fields_of(cls)}
    return set_values(obj, {k: v for k, v in flat.items() if k in known})


def apply_preset(settings, preset: str):
    if preset not in PRESETS:
        raise SettingsError("settings.error.preset", choices=", ".join(PRESETS), value=preset)
    return set_values(settings, PRESETS[preset])


def target_modules_of(spec: str) -> list[str] | str:
    """A preset name ("q_proj,v_proj", "attention", "all-linear") or a comma-separated custom list."""
    spec = spec.strip()
    if spec in TARGET_PRESETS:
        return TARGET_PRESETS[spec]
    modules = [m.strip() for m in spec.split(",") if m.strip()]
    if not modules:
        raise SettingsError("settings.error.target_modules")
    return modules


# ---------------------------------------------------------------------------------------------------
# argparse, generated from the dataclasses so `--help` documents every flag with the UI's defaults.

def scope_of(cls) -> str:
    """The i18n scope of a settings class: 'run' for RunSettings, 'eval' for EvalSettings."""
    return cls.__name__.removesuffix("Settings").lower()


def add_arguments(parser: argparse.ArgumentParser, cls, lang: str = "en") -> argparse.ArgumentParser:
    from hust_sft.i18n import field_help

    if cls is RunSettings:
        parser.add_argument("--preset", choices=list(PRESETS), default=None,
                            help=field_help("preset", lang).replace("%", "%%"))
        parser.add_argument("--config", default=None, help=field_help("config", lang).replace("%", "%%"))
    scope = scope_of(cls)
    for name, f, tp in fields_of(cls):
        if not f.metadata.get("cli", True):
            continue
        flag = "--" + name.replace("_", "-")
        base = _base_type(tp)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{field_help(name, lang, scope)} (default: {default!r})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif base is list:
            kwargs["action"] = "append"
            if f.metadata.get("choices"):  # comma-separated or repeated; `coerce` checks each item
                kwargs["metavar"] = ",".join(f.metadata["choices"])
        else:
            kwargs["metavar"] = base.__name__.upper()
            if f.metadata.get("choices"):
                kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)
    return parser


def from_args(cls, ns: argparse.Namespace):
    """Settings from parsed flags: defaults, then --config JSON, then --preset, then explicit flags."""
    values = dict(vars(ns))
    config, preset = values.pop("config", None), values.pop("preset", None)
    settings = cls()
    if config:
        try:
            settings = from_dict(cls, json.loads(Path(config).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise SettingsError("settings.error.config", path=config, reason=str(e)) from None
    if preset:
        apply_preset(settings, preset)
    known = {name for name, _, _ in fields_of(cls)}
    return set_values(settings, {k: v for k, v in values.items() if k in known})
