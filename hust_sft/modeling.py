"""Base model and tokenizer loading, the device and dtype the precision policy picks, and LoRA adapters.

The policy (which weights dtype, autocast, LoRA dtype and loss scaler for which card and setting) is
`hust_sft.precision.plan_precision`; `pick_device` / `pick_dtype` / `pick_mixed_precision` are thin calls
to it, kept for their callers. Trainable LoRA weights stay fp32 whatever the base dtype (PEFT's
`autocast_adapter_dtype`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from hust_sft import precision
from hust_sft.errors import LocalizedError
from hust_sft.settings import LoraSettings, ModelSettings, target_modules_of


class ModelError(LocalizedError, RuntimeError):
    """The model, tokenizer, adapter or device cannot be used as asked; the message says what to change."""


def pick_device(requested: str = "auto") -> str:
    return precision.device_kind(requested)


def pick_dtype(device: str, requested: str = "auto", mixed_precision: str | None = None) -> torch.dtype:
    """Storage dtype of the frozen base weights (the plan's `load_dtype`).

    `mixed_precision` is the autocast a training run will use ("bf16", "fp16", "no"); None means answering
    (Chat, evaluation), where "auto" is the card's half precision on CUDA and fp32 elsewhere (batched greedy
    decoding equals one-at-a-time decoding exactly). On a CPU under bf16 autocast the frozen base is stored
    in bf16 (see hust_sft.precision). PrecisionError for a setting the device cannot run.
    """
    training = mixed_precision is not None
    plan = precision.plan_precision(precision.detect(device), requested, mixed_precision or "auto",
                                    training=training)
    return precision.torch_dtype(plan.load_dtype)


def pick_mixed_precision(device: str, requested: str = "auto", dtype: str = "auto") -> str:
    """'bf16', 'fp16' or 'no': what autocast the trainer should use (the plan's `autocast`; `dtype` is the
    weights setting, which "auto" autocast follows)."""
    return precision.plan_precision(precision.detect(device), dtype, requested).autocast


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_unreachable(error: BaseException, model: str) -> bool:
    """Whether loading `model` (a Hub id, not a local folder) failed because the Hub could not be reached:
    no network, HF_HUB_OFFLINE, or a model not in the cache while offline. transformers says so in its own
    words ("couldn't connect to 'https://huggingface.co'"); the app says it in its own, with what to do."""
    if Path(model).exists():
        return False
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
    except ImportError:  # an older huggingface_hub
        LocalEntryNotFoundError = OfflineModeIsEnabled = ()  # noqa: N806
    seen, e = set(), error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError)):
            return True
        if type(e).__name__ in ("ConnectError", "ConnectTimeout", "ConnectionError"):
            return True
        e = e.__cause__ or e.__context__
    text = str(error)
    return "couldn't connect to" in text or "offline mode" in text.lower()


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model)
    except OSError as e:
        if hub_unreachable(e, model):
            raise ModelError("model.error.no_hub", model=model, endpoint=hub_endpoint()) from None
        raise ModelError("model.error.tokenizer", model=model, reason=str(e)) from None
    if tok.pad_token is None:
        # Qwen's <|endoftext|>; never the <|im_end|> the model must learn to emit.
        tok.pad_token = "<|endoftext|>" if "<|endoftext|>" in tok.get_vocab() else tok.eos_token
    if tok.chat_template is None:
        raise ModelError("model.error.no_chat_template", model=model)
    return tok


def load_base_model(settings: ModelSettings, quantization: str = "none", dtype: torch.dtype | None = None):
    """The frozen base model on its device, in `dtype` or the policy's (optionally 4/8-bit, bitsandbytes)."""
    from transformers import AutoModelForCausalLM

    device = pick_device(settings.device)
    kwargs: dict = {}
    if quantization != "none":
        # Refused on a CPU or without bitsandbytes before anything loads; the compute dtype is the card's, or
        # the half precision of the autocast a training run passes as `dtype`.
        half = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "auto")
        mixed = half if settings.dtype == "auto" else "auto"
        plan = precision.plan_precision(precision.detect(device), settings.dtype, mixed, quantization)
        kwargs["quantization_config"] = precision.quantization_config(plan)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
        dtype = precision.torch_dtype(plan.load_dtype)
    kwargs["dtype"] = dtype if dtype is not None else pick_dtype(device, settings.dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(settings.model, **kwargs)
    except OSError as e:
        if hub_unreachable(e, settings.model):
            raise ModelError("model.error.no_hub", model=settings.model, endpoint=hub_endpoint()) from None
        raise ModelError("model.error.load_model", model=settings.model, reason=str(e)) from None
    if quantization == "none":
        model.to(device)
    model.config.use_cache = False
    return model


def lora_config(lora: LoraSettings):
    from peft import LoraConfig

    return LoraConfig(
        r=lora.lora_r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
        target_modules=target_modules_of(lora.target_modules), use_rslora=lora.use_rslora,
        use_dora=lora.use_dora, bias="none", task_type="CAUSAL_LM")


def attach_lora(model, lora: LoraSettings, *, quantized: bool = False, gradient_checkpointing: bool = False):
    """Wrap the base model in a trainable PeftModel."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    try:
        return get_peft_model(model, lora_config(lora))
    except ValueError as e:
        raise ModelError("model.error.target_modules", target_modules=lora.target_modules, reason=str(e)) from None


def adapter_dir(spec: str) -> str:
    """A run directory (holding adapter/), an adapter directory, or a Hub id, as PEFT wants it."""
    p = Path(spec)
    if (p / "adapter" / "adapter_config.json").is_file():
        return str(p / "adapter")
    if (p / "adapter_config.json").is_file():
        return str(p)
    if p.exists():
        raise ModelError("model.error.no_adapter_config", spec=spec)
    return spec  # a Hub id; PEFT downloads it


def load_adapters(model, specs: list[str], names: list[str] | None = None):
    """One PeftModel over one copy of the base weights, with each adapter loaded under its own name.

    Base answers come from `with model.disable_adapter():`, tuned ones from `model.set_adapter(name)`.
    """
    from peft import PeftModel

    names = names or [f"tuned{i}" if i else "tuned" for i in range(len(specs))]
    peft_model = model
    for spec, name in zip(specs, names):
        path = adapter_dir(spec)
        try:
            if isinstance(peft_model, PeftModel):
                peft_model.load_adapter(path, adapter_name=name)
            else:
                peft_model = PeftModel.from_pretrained(model, path, adapter_name=name)
        except (OSError, ValueError) as e:
            raise ModelError("model.error.load_adapter", spec=spec, reason=str(e)) from None
    peft_model.eval()
    return peft_model


def base_model_of_adapter(spec: str) -> str | None:
    """The base_model_name_or_path an adapter was trained on, if it says."""
    cfg = Path(adapter_dir(spec)) / "adapter_config.json"
    if cfg.is_file():
        return json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    return None


def peak_memory_bytes(device: str) -> int:
    """Peak memory of this process on `device`: CUDA allocator peak, else the process's peak RSS."""
    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().peak_wset)
