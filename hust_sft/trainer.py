"""A `transformers.Trainer` whose loss projects only the answer positions through the LM head.

Why not TRL's SFTTrainer (measured, issue 10 item 5): TRL 1.16's SFTTrainer also computes the loss through a
chunked, fused LM head (`model(..., fused_lm_head=True)`), but on a CPU it projects *every* position, not only
the learned ones (its compact path needs Triton), recomputes the logits in the backward pass and adds entropy
and top-1 metrics. `python -m bench.train_speed --layers 2 --samples 16 --arms ours,trl` (same data, same
answer-only labels, collator, sampler, model, LoRA and TrainingArguments; only the trainer class swapped;
2-vCPU machine shared with other test suites, load average ~14): ours 118.6 s / 1,956 MB peak RSS, TRL
487.7 s / 2,977 MB — 4.1× the time and 1.5× the memory, with identical logged losses (12.118927). Far
outside the 10% that adopting it would need, so this hand-written path stays; the tests pinning its loss and
gradients (tests/test_training.py) guard it.

Why: Qwen2.5-0.5B's head is 896 × 151,936. The standard path computes logits for every position of every
padded row (and keeps them, plus their fp32 copy in the loss, for backward), although with answer-only
labels most positions are never scored. Here the model is called with a boolean `logits_to_keep` mask
(transformers' own slicing before `lm_head`, which flattens the kept rows), so only positions whose
NEXT label is learned are projected; cross-entropy is then computed in fp32 exactly as the standard
causal-LM loss does. Going through `model(...)` rather than the bare backbone keeps PEFT, DDP gradient
sync and gradient checkpointing working unchanged.

When the head is frozen (always, with LoRA on the linear layers), even the kept logits are never held
whole: the model returns its final hidden states (an empty logits mask skips its own head), and
`ChunkedHeadCrossEntropy` projects a few hundred positions at a time, computing each chunk's loss and its
gradient with respect to the hidden states at once, then dropping the chunk's logits. The standard path
keeps logits, their fp32 copy and the log-softmax (~14 bytes × 151,936 per answer token: 1.7 GB for a
batch of 800 answer tokens) until the backward pass; this keeps one chunk. Liger-Kernel fuses the same
idea in Triton for GPUs only; nothing in transformers/PEFT does it, so it is written here.

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


def frozen_head_weight(model) -> torch.Tensor | None:
    """The LM head's weight when it is a frozen, bias-free linear layer (so chunking it is exact), else None."""
    inner = getattr(model, "module", model)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if (type(head) is not torch.nn.Linear or head.bias is not None or head.weight.requires_grad
            or head.weight.is_meta):
        return None
    return head.weight


class ChunkedHeadCrossEntropy(torch.autograd.Function):
    """sum over rows of cross_entropy(hidden @ weight.T, targets), chunk by chunk, for a frozen `weight`.

    The gradient with respect to `hidden`, (softmax − one-hot) @ weight, is computed in the forward pass
    while each chunk's logits exist; backward only scales it. Logits follow the ambient autocast exactly as
    `lm_head` would; softmax and the loss are in fp32 like `ForCausalLMLoss`.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, rows_per_chunk: int):
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad = torch.empty_like(hidden) if hidden.requires_grad else None
        for start in range(0, hidden.shape[0], rows_per_chunk):
            h, t = hidden[start:start + rows_per_chunk], targets[start:start + rows_per_chunk]
            if not torch.is_autocast_enabled(h.device.type):
                h = h.to(weight.dtype)  # e.g. accelerate's fp32 copy of a bf16 model's outputs
            logits = F.linear(h, weight)
            logits32 = logits.float()
            lse = torch.logsumexp(logits32, dim=-1)
            total += (lse - logits32.gather(1, t[:, None]).squeeze(1)).sum()
            if grad is not None:
                probs = torch.exp(logits32.sub_(lse[:, None]))  # in place: one vocab-wide fp32 buffer
                probs[torch.arange(t.shape[0], device=t.device), t] -= 1.0
                grad[start:start + rows_per_chunk] = F.linear(probs.to(logits.dtype), weight.t()).to(hidden.dtype)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None, None


def rows_per_chunk(vocab_size: int, budget_elements: int = 2**25) -> int:
    """Rows of a (rows, vocab) fp32 buffer within ~128 MiB: 220 rows for Qwen's 151,936 tokens."""
    return max(1, budget_elements // vocab_size)


def answer_only_loss(model, inputs: dict, num_items_in_batch=None) -> tuple[torch.Tensor, object]:
    """Causal-LM loss from logits at learned positions only; equal to `model(**inputs).loss`."""
    labels = inputs["labels"]
    targets_mask = labels[:, 1:] != IGNORE  # position t predicts label t+1
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets_mask
    targets = labels[:, 1:][targets_mask]
    weight = frozen_head_weight(model)
    chunked = weight is not None
    # Chunked: an all-False mask, so the model's own head projects nothing; the last hidden state is post-norm.
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                    logits_to_keep=torch.zeros_like(keep) if chunked else keep, output_hidden_states=chunked)
    if chunked:
        hidden = outputs.hidden_states[-1][keep]  # (kept positions, hidden size)
        loss_sum = ChunkedHeadCrossEntropy.apply(hidden, weight, targets, rows_per_chunk(weight.shape[0]))
    else:
        logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # (kept positions, vocab)
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
