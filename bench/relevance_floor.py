"""How many questions keep a passage under each relevance floor (`--min-relevance`), per split.

    python -m bench.relevance_floor                                   # BJTU file, bench/data OOD file
    python -m bench.relevance_floor --floors 0.2,0.25,0.3 --data FILE --ood FILE

The index is the one a run builds (`retrieval.Retriever.build` over the training split of our default
split settings); a question "keeps a passage" when `Retriever.search(question, 1, min_relevance=floor)`
finds one. The floor is picked on the validation split (most questions keep a passage) and checked on the
out-of-domain file (few should). Counts, not timings: the figures are exact and machine-independent.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import BJTU, ROOT

OOD = ROOT / "bench" / "data" / "ood_national_policy.jsonl"


def kept(retriever, records, floor: float) -> int:
    return sum(bool(retriever.search(r.question, 1, min_relevance=floor)) for r in records)


def main(argv=None) -> int:
    from hust_sft.data import load_data, load_records
    from hust_sft.retrieval import Retriever
    from hust_sft.settings import DataSettings

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(BJTU))
    p.add_argument("--ood", default=str(OOD))
    p.add_argument("--floors", default="0.2,0.25,0.3")
    a = p.parse_args(argv)
    if not Path(a.data).is_file():
        print(f"error: {a.data} not found; pass --data with a Q&A file", file=sys.stderr)
        return 2
    splits = load_data(DataSettings(data=a.data)).splits
    retriever = Retriever.build(splits["train"])
    parts = [(name, splits[name]) for name in ("validation", "test")]
    if a.ood:
        parts.append(("out of domain", load_records(a.ood)[0]))
    print(f"index: {len(retriever)} training pairs of {a.data}")
    print("| min relevance | " + " | ".join(f"{name} ({len(recs)})" for name, recs in parts) + " |")
    print("|---|" + "---|" * len(parts))
    for floor in (float(x) for x in a.floors.split(",") if x.strip()):
        print(f"| {floor:.2f} | " + " | ".join(str(kept(retriever, recs, floor)) for _, recs in parts) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
