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


TOPICS = ["博士研究生培养目标", "硕士研究生学位申请", "本科生转专业", "奖学金评定", "学籍异动", "课程重修",
          "宿舍调整", "图书馆借阅", "校园网开户", "医疗报销", "出国交流", "学术不端处理"]


def write_long_answers_jsonl(path: Path, n: int = 24) -> Path:
    """`n` HUST-shaped pairs: answers of 300–600 characters in Markdown bullet lists (the HUST handbook's
    first record, on doctoral training goals, is ~330 characters in two lists). Deterministic."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        target = 320 + (240 * i) // max(n - 1, 1)          # 320 … 560 characters, evenly spread
        lines = [f"关于{topic}（第{i}条），学校的规定如下："]
        item = 1
        while sum(len(x) + 1 for x in lines) < target - 14:
            lines.append(f"- 要求{item}：申请人应在第{item + i}周内向学院教务办公室提交材料，逾期不予受理。")
            item += 1
        text = "\n".join(lines) + "\n详情请咨询学院研究生秘书。"
        assert 300 <= len(text) <= 600, len(text)
        rows.append({"conversations": [{"role": "user", "content": f"{topic}有哪些规定？（{i}）"},
                                       {"role": "assistant", "content": text.rstrip()}]})
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path
