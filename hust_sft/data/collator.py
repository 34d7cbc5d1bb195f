"""Dynamic padding for causal-LM batches: each batch is padded to its own longest sample, never to a fixed length.

Hand-written rather than `DataCollatorForSeq2Seq` because that collator pads on whatever side the shared
tokenizer happens to be set to (generation needs left padding, training right); this one always pads
right, independent of tokenizer state, and knows nothing but ids.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hust_sft.data.encoding import IGNORE


@dataclass
class PadCollator:
    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.as_tensor(f["input_ids"])
            labels[i, :n] = torch.as_tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
