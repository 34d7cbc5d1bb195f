"""hust-sft: LoRA fine-tuning, retrieval, evaluation and a Gradio Space for a student-handbook Q&A set."""
import logging

# bitsandbytes (imported by peft whenever it is installed) logs a warning at import on a CPU with AVX-512 bf16
# when the optional `kernels` package is missing: a faster CPU 4-bit kernel it cannot fetch. This project never
# runs 4-bit on a CPU (hust_sft.modeling refuses it), so the line is noise that would precede the one error a
# CLI prints; errors from bitsandbytes still show.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
