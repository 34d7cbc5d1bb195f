"""The small numbered Q&A file the training, job and CLI tests learn from (one place, not one per test file)."""
from __future__ import annotations

import json
from pathlib import Path


def write_qa_jsonl(path: Path, n: int, factor: int = 7) -> Path:
    """`n` conversations "问题 i" → "答案是 i*factor" in the handbook's `conversations` format."""
    rows = [{"conversations": [{"role": "user", "content": f"问题 {i}"},
                               {"role": "assistant", "content": f"答案是 {i * factor}"}]} for i in range(n)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path
