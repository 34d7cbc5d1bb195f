"""Base model and tokenizer loading, the dtype/device policy, and attaching or loading LoRA adapters.

Policy (the usual tutorial hard-codes `fp16=True`, which fails on a CPU and overflows on Ampere+ less
gracefully than bf16):
  weights   bf16 where the device supports it, fp16 on pre-Ampere CUDA (T4), fp32 on CPU — except that
            a CPU training under bf16 autocast stores the frozen base in bf16 too (see `pick_dtype`);
  autocast  bf16 on CUDA with bf16, fp16 on older CUDA, bf16 on CPUs with avx512_bf16/AMX, else none.
Trainable LoRA weights stay fp32 whatever the base dtype (PEFT's `autocast_adapter_dtype`).
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch

from hust_sft.errors import LocalizedError
from hust_sft.settings import LoraSettings, ModelSettings, target_modules_of

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class ModelError(LocalizedError, RuntimeError):
    """The model, tokenizer, adapter or device cannot be used as asked; the message says what to change."""


def pick_device(requested: str = "auto") -> str:
    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("model.error.no_cuda")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """avx512_bf16 or AMX: the CPU runs bf16 matmuls natively, so bf16 autocast is a real speed-up."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(device: str, requested: str = "auto", mixed_precision: str = "no") -> torch.dtype:
    """Storage dtype of the frozen base weights.

    `mixed_precision` is the autocast a training run will use. On a CPU under bf16 autocast, fp32 base
    weights would be cast to bf16 in every forward pass (autocast caches casts only for trainable leaves)
    and each bf16 copy kept for the backward pass: fp32 weights (4 bytes a parameter) plus per-step bf16
    copies (2 more) become one bf16 copy (2), and the casts go. Inference on a CPU keeps fp32, where
    batched greedy decoding equals one-at-a-time decoding exactly.
    """
    if requested != "auto":
        return DTYPES[requested]
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and mixed_precision == "bf16":
        return torch.bfloat16
    return torch.float32


def pick_mixed_precision(device: str, requested: str = "auto") -> str:
    """'bf16', 'fp16' or 'no': what autocast the trainer should use."""
    if requested == "no":
        return "no"
    if device == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested == "bf16" and not bf16_ok:
            raise ModelError("model.error.bf16_gpu")
        return requested
    if device == "cpu":
        if requested == "fp16":
            raise ModelError("model.error.fp16_cpu")
        if requested == "bf16" or cpu_has_bf16():
            return "bf16"
        return "no"
    return "no" if requested == "auto" else requested


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
    dtype = dtype if dtype is not None else pick_dtype(device, settings.dtype)
    kwargs: dict = {"dtype": dtype}
    if quantization != "none":
        if device != "cuda":
            raise ModelError("model.error.quantization_device", quantization=quantization, device=device)
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ModelError("model.error.no_bitsandbytes") from None
        from transformers import BitsAndBytesConfig

        if quantization == "4bit":
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16)
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
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
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
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
