"""The precision policy: what a card and the settings give for weights, autocast, LoRA and the loss scaler.

Policy apart from mechanism: `plan_precision(info, dtype, mixed_precision, quantization)` is pure — it reads
a `DeviceInfo` (what torch reports; `detect()` fills one) and the three settings, and returns a
`PrecisionPlan` or raises `PrecisionError` naming the setting the card cannot run. `hust_sft.modeling`
loads models by the plan; the Train tab shows it (`describe`) before Start; the README's table is
`python -m hust_sft.precision --table`, so the table and the code cannot drift.

  bf16      computed natively from compute capability 8.0 (A100 sm_80, A10G sm_86, L4 sm_89, H100/H200
            sm_90). A T4 (sm_75) never gets bf16: torch.cuda.is_bf16_supported() says True there (it counts
            emulation), but the matmuls are emulated, so capability < 8.0 is what decides.
  fp16      the half precision of older cards; always trained under fp16 autocast with a loss scaler
            (the Trainer's GradScaler) — fp16 weights without one are refused (small gradients underflow).
  LoRA      the trainable weights stay fp32 whatever the base (PEFT's autocast_adapter_dtype; QLoRA's
            prepare_model_for_kbit_training casts the rest that trains to fp32 as well).
  CPU       fp32, or bf16 autocast on a CPU with avx512_bf16/AMX, where the frozen base is stored in bf16.
  4/8-bit   QLoRA needs CUDA and bitsandbytes; NF4 with double quantization, computed in the card's half.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hust_sft.errors import LocalizedError
from hust_sft.i18n import t

HALVES = ("bf16", "fp16")
BF16_CAPABILITY = (8, 0)
LORA_DTYPE = "fp32"


class PrecisionError(LocalizedError, RuntimeError):
    """A dtype / mixed-precision / quantization setting this device cannot run; the message says what to set."""


@dataclass(frozen=True)
class DeviceInfo:
    """What torch reports about the device a run will use (faked in tests and for the README's table)."""
    kind: str                                   # "cuda" | "mps" | "cpu"
    name: str = ""
    capability: tuple[int, int] | None = None   # CUDA compute capability, e.g. (7, 5) for a T4
    memory_gib: float | None = None
    cpu_bf16: bool = False                      # avx512_bf16 or AMX on the host CPU
    bitsandbytes: bool = False                  # the package is importable

    @property
    def bf16(self) -> bool:
        """Native bf16: a CUDA card of compute capability ≥ 8.0 (a CPU: avx512_bf16/AMX, see cpu_bf16)."""
        return self.kind == "cuda" and self.capability is not None and tuple(self.capability) >= BF16_CAPABILITY

    @property
    def sm(self) -> str:
        return sm_name(self.capability)


def sm_name(capability: tuple[int, int] | None) -> str:
    """"sm_75" for (7, 5); "" without a CUDA capability."""
    return f"sm_{capability[0]}{capability[1]}" if capability else ""


@dataclass(frozen=True)
class PrecisionPlan:
    """What a run on `device` stores, computes and trains in. dtypes are names: "bf16", "fp16", "fp32"."""
    device: str
    card: str
    capability: tuple[int, int] | None
    memory_gib: float | None
    weights: str            # the frozen base's storage: "bf16" | "fp16" | "fp32" | "nf4" | "int8"
    load_dtype: str         # the dtype from_pretrained gets (for 4/8-bit: of the modules left unquantized)
    autocast: str           # "bf16" | "fp16" | "no": the Trainer's mixed precision
    lora: str               # the trainable LoRA weights' dtype
    grad_scaler: bool       # fp16 autocast: the Trainer scales the loss (torch.amp.GradScaler)
    quantization: str       # "none" | "4bit" | "8bit"
    compute_dtype: str      # what the matmuls run in (bitsandbytes' bnb_4bit_compute_dtype for 4-bit)
    why_key: str            # i18n key of the human reason
    why_params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def why(self) -> str:
        return t(self.why_key, "en", **self.why_params)

    def to_dict(self) -> dict:
        return {**asdict(self), "why": self.why}


# ---------------------------------------------------------------------------------------------------
# Detection (the only part that asks torch)

@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """avx512_bf16 or AMX: the CPU runs bf16 matmuls natively, so bf16 autocast is a real speed-up."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def device_kind(requested: str = "auto") -> str:
    """The device a run uses: `requested`, else CUDA, MPS or CPU, whichever is there first."""
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise PrecisionError("model.error.no_cuda")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def detect(requested: str = "auto") -> DeviceInfo:
    """A DeviceInfo for the device `requested` ("auto", "cuda", "cpu", "mps") from what torch reports."""
    import torch

    kind = device_kind(requested)
    common = {"cpu_bf16": cpu_has_bf16(), "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None}
    if kind == "cuda":
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return DeviceInfo("cuda", torch.cuda.get_device_name(index),
                          tuple(int(x) for x in torch.cuda.get_device_capability(index)),
                          round(props.total_memory / 2**30, 1), **common)
    if kind == "mps":
        return DeviceInfo("mps", "Apple MPS", **common)
    try:
        import psutil

        memory = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory = None
    return DeviceInfo("cpu", "CPU", None, memory, **common)


# ---------------------------------------------------------------------------------------------------
# The policy

def plan_precision(info: DeviceInfo, dtype: str = "auto", mixed_precision: str = "auto",
                   quantization: str = "none", *, training: bool = True) -> PrecisionPlan:
    """The precision of a run with these settings on `info`'s device; PrecisionError if it cannot work there.

    `training=False` is answering (Chat, evaluation, export checks): no autocast, and "auto" weights are the
    card's half precision on CUDA, fp32 elsewhere (where batched greedy decoding equals one at a time).
    """
    kind, half = info.kind, ("bf16" if info.bf16 else "fp16") if info.kind == "cuda" else None
    # 1. What the device cannot run at all.
    if quantization != "none":
        if kind != "cuda":
            raise PrecisionError("model.error.quantization_device", quantization=quantization, device=kind)
        if not info.bitsandbytes:
            raise PrecisionError("model.error.no_bitsandbytes")
    if kind == "cuda" and not info.bf16:
        if dtype == "bf16":
            raise PrecisionError("precision.error.bf16_card", setting="dtype", card=info.name, sm=info.sm)
        if training and mixed_precision == "bf16":
            raise PrecisionError("model.error.bf16_gpu")
    if kind == "cpu":
        if dtype == "fp16":
            raise PrecisionError("precision.error.fp16_cpu_weights")
        if training and mixed_precision == "fp16":
            raise PrecisionError("model.error.fp16_cpu")
    # 2. Settings that contradict each other.
    if training and dtype in HALVES and mixed_precision in HALVES and dtype != mixed_precision:
        raise PrecisionError("precision.error.mismatch", dtype=dtype, mixed=mixed_precision)
    # 3. Autocast.
    if not training or mixed_precision == "no":
        autocast = "no"
    elif mixed_precision in HALVES:
        autocast = mixed_precision
    elif dtype in HALVES:
        autocast = dtype
    elif kind == "cuda":
        autocast = half
    elif kind == "cpu":
        autocast = "bf16" if info.cpu_bf16 else "no"
    else:
        autocast = "no"
    if training and dtype == "fp16" and autocast != "fp16":
        raise PrecisionError("precision.error.fp16_no_scaler")
    # 4. Weights and what the matmuls run in.
    if quantization != "none":
        compute = dtype if dtype in HALVES else autocast if autocast != "no" else half
        weights, load = ("nf4" if quantization == "4bit" else "int8"), compute
    else:
        if dtype != "auto":
            weights = dtype
        elif kind == "cuda":
            weights = half if not training else autocast if autocast != "no" else "fp32"
        elif kind == "cpu" and autocast == "bf16":
            weights = "bf16"  # fp32 weights would be cast to bf16 in every forward pass and kept for backward
        else:
            weights = "fp32"
        load = weights
        compute = autocast if autocast != "no" else weights
    why_key, params = _why(info, dtype, mixed_precision, quantization, training, autocast, compute)
    return PrecisionPlan(device=kind, card=info.name, capability=info.capability, memory_gib=info.memory_gib,
                         weights=weights, load_dtype=load, autocast=autocast, lora=LORA_DTYPE,
                         grad_scaler=training and autocast == "fp16", quantization=quantization,
                         compute_dtype=compute, why_key=why_key, why_params=params)


def _why(info: DeviceInfo, dtype: str, mixed: str, quantization: str, training: bool, autocast: str,
         compute: str) -> tuple[str, dict]:
    params = {"card": info.name, "sm": info.sm, "dtype": dtype, "mixed": mixed, "compute": compute}
    if quantization == "4bit":
        return "precision.why.nf4", params
    if quantization == "8bit":
        return "precision.why.int8", params
    if not training:
        return "precision.why.inference", params
    if dtype != "auto" or mixed != "auto":
        return "precision.why.asked", params
    if info.kind == "cuda":
        return ("precision.why.bf16_card" if info.bf16 else "precision.why.fp16_card"), params
    if info.kind == "cpu":
        return ("precision.why.cpu_bf16" if autocast == "bf16" else "precision.why.cpu_fp32"), params
    return "precision.why.other", params


def plan_for(settings, info: DeviceInfo | None = None, *, training: bool = True) -> PrecisionPlan:
    """The plan of a RunSettings (its model.device / model.dtype / memory.mixed_precision / quantization)."""
    info = info if info is not None else detect(settings.model.device)
    return plan_precision(info, settings.model.dtype, settings.memory.mixed_precision,
                          settings.memory.quantization, training=training)


def torch_dtype(name: str):
    """The torch.dtype of a plan's dtype name ("bf16", "fp16", "fp32")."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def quantization_config(plan: PrecisionPlan):
    """transformers' BitsAndBytesConfig for a 4/8-bit plan (NF4, double quantization, the plan's compute dtype)."""
    from transformers import BitsAndBytesConfig

    if plan.quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch_dtype(plan.compute_dtype))
    if plan.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"not a quantized plan: {plan.quantization!r}")


# ---------------------------------------------------------------------------------------------------
# What a person reads: the Train tab's hardware line, the README's table

def _where(kind: str, card: str, sm: str, memory: float | None, lang: str) -> str:
    return t(f"precision.describe.{kind}", lang, card=card, sm=sm, memory=memory if memory is not None else "?")


def describe(plan: PrecisionPlan, lang: str = "en") -> str:
    """One Markdown line: the card, its memory and the precision chosen, with why."""
    where = _where(plan.device, plan.card, sm_name(plan.capability), plan.memory_gib, lang)
    return t("precision.describe.plan", lang, where=where,
             cell=cell(plan, lang), why=t(plan.why_key, lang, **plan.why_params))


def describe_error(error: PrecisionError, info: DeviceInfo, lang: str = "en") -> str:
    """The hardware line when the settings cannot run on this device: the device, and why not."""
    return t("precision.describe.refused", lang, where=_where(info.kind, info.name, info.sm, info.memory_gib, lang),
             error=error.text(lang))


def cell(plan: PrecisionPlan, lang: str = "en") -> str:
    """"weights · autocast (+ scaler)", e.g. "bf16 weights · bf16 autocast" or "nf4 (fp16 compute) · ..."."""
    weights = (t("precision.cell.quantized", lang, weights=plan.weights, compute=plan.compute_dtype)
               if plan.quantization != "none" else t("precision.cell.weights", lang, weights=plan.weights))
    if plan.autocast == "no":
        return t("precision.cell.no_autocast", lang, weights=weights)
    key = "precision.cell.autocast_scaler" if plan.grad_scaler else "precision.cell.autocast"
    return t(key, lang, weights=weights, autocast=plan.autocast)


# The devices of the README's table: what a Space offers (and a CPU with and without native bf16).
CARDS: dict[str, DeviceInfo] = {
    "CPU": DeviceInfo("cpu", "CPU"),
    "CPU (avx512_bf16/AMX)": DeviceInfo("cpu", "CPU", cpu_bf16=True),
    "T4 (sm_75)": DeviceInfo("cuda", "Tesla T4", (7, 5), 15.6, bitsandbytes=True),
    "A10G (sm_86)": DeviceInfo("cuda", "NVIDIA A10G", (8, 6), 22.3, bitsandbytes=True),
    "L4 (sm_89)": DeviceInfo("cuda", "NVIDIA L4", (8, 9), 22.2, bitsandbytes=True),
    "A100 (sm_80)": DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", (8, 0), 79.3, bitsandbytes=True),
    "H100/H200 (sm_90)": DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", (9, 0), 79.1, bitsandbytes=True),
}
# (label, dtype, mixed_precision, quantization, training)
SETTINGS_ROWS: list[tuple[str, str, str, str, bool]] = [
    ("train: dtype auto, mixed auto (default)", "auto", "auto", "none", True),
    ("train: dtype bf16", "bf16", "auto", "none", True),
    ("train: dtype fp16", "fp16", "auto", "none", True),
    ("train: dtype fp32", "fp32", "auto", "none", True),
    ("train: mixed_precision bf16", "auto", "bf16", "none", True),
    ("train: mixed_precision fp16", "auto", "fp16", "none", True),
    ("train: mixed_precision no", "auto", "no", "none", True),
    ("train: quantization 4bit (QLoRA)", "auto", "auto", "4bit", True),
    ("train: quantization 8bit", "auto", "auto", "8bit", True),
    ("answer (Chat, Evaluate): dtype auto", "auto", "auto", "none", False),
]


def table_cell(info: DeviceInfo, dtype: str, mixed: str, quantization: str, training: bool) -> str:
    try:
        return cell(plan_precision(info, dtype, mixed, quantization, training=training), "en")
    except PrecisionError as e:
        return f"refused: `{e.key.rsplit('.', 1)[-1]}`"


def table() -> str:
    """The README's precision table (Markdown): every setting row × every card of CARDS."""
    lines = ["| setting | " + " | ".join(CARDS) + " |", "| --- |" + " --- |" * len(CARDS)]
    for label, dtype, mixed, quantization, training in SETTINGS_ROWS:
        cells = [table_cell(info, dtype, mixed, quantization, training) for info in CARDS.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hust_sft.precision",
                                description="The precision policy: this machine's plan, or the README's table.")
    p.add_argument("--table", action="store_true", help="print the table of every card × setting (Markdown)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--mixed-precision", default="auto")
    p.add_argument("--quantization", default="none")
    a = p.parse_args(argv)
    if a.table:
        print(table())
        return 0
    try:
        print(describe(plan_precision(detect(a.device), a.dtype, a.mixed_precision, a.quantization), "en"))
    except PrecisionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
