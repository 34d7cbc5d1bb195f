"""A `transformers.Trainer` whose loss projects only the answer positions through the LM head.

Why: Qwen2.5-0.5B's head is 896 × 151,936. The standard path computes logits for every position of every
padded row (and keeps them, plus their fp32 copy in the loss, for backward), although with answer-only
labels most positions are never scored. Here the model is called with a boolean `logits_to_keep` mask
(transformers' own slicing before `lm_head`, which flattens the kept rows), so only positions whose
NEXT label is learned are projected; cross-entropy is then computed in fp32 exactly as the standard
causal-LM loss does. Going through `model(...)` rather than the bare backbone keeps PEFT, DDP gradient
sync and gradient checkpointing working unchanged.

Loss normalisation mirrors `Trainer.compute_loss` + `ForCausalLMLoss` in transformers 5: when the Trainer
passes `num_items_in_batch` (the count of learned shifted labels over all micro-batches of one optimizer
step, gathered over processes), the loss is `sum / num_items_in_batch`, multiplied by the number of
processes because DDP averages gradients; otherwise it is the mean over this micro-batch. The Trainer's
own rule (`model_accepts_loss_kwargs and num_items_in_batch is not None`) then decides whether to divide
by the accumulation steps, which is consistent with both cases.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from transformers import Trainer

from hust_sft.data.encoding import IGNORE


def supports_logits_mask(model) -> bool:
    """Whether the causal LM under any DDP/PEFT wrapping takes `logits_to_keep` (v5 decoder LMs do)."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    if hasattr(inner, "get_base_model"):  # PeftModel
        inner = inner.get_base_model()
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def answer_only_loss(model, inputs: dict, num_items_in_batch=None) -> tuple[torch.Tensor, object]:
    """Causal-LM loss from logits at learned positions only; equal to `model(**inputs).loss`."""
    labels = inputs["labels"]
    targets_mask = labels[:, 1:] != IGNORE  # position t predicts label t+1
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets_mask
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                    logits_to_keep=keep)
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # (kept positions, vocab)
    targets = labels[:, 1:][targets_mask]
    loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss_sum.device)
        return loss_sum / num_items_in_batch, outputs
    return loss_sum / targets.numel() if targets.numel() else loss_sum, outputs


class AnswerOnlyHeadTrainer(Trainer):
    """`Trainer` with `answer_only_loss`; falls back to the standard loss for models without a logits mask."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "labels" not in inputs or not supports_logits_mask(model):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = answer_only_loss(model, inputs, num_items_in_batch)
        # Same rescaling as Trainer.compute_loss: DDP averages gradients over processes, but the loss was
        # already divided by the item count of all processes together.
        if (self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs
                and num_items_in_batch is not None):
            loss = loss * (self.accelerator.num_processes // self.get_tp_size()
                           if self.args.n_gpu <= 1 else self.args.n_gpu)
        return (loss, outputs) if return_outputs else loss
