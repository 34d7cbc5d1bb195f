"""Fact accounting in every evaluation: per answer in per_example.jsonl and the CSV, per arm in the summary
and summary.md, with paired CIs — computed here by hand on stored rows."""
from hust_sft.evaluation import account_facts, render_markdown, summarize
from hust_sft.evaluation.reports import fact_diff, fact_value, flat_rows

REF = "工作时间8:00-11:30，电话51688446。"


def _row(arm, qid, answer, passages, split="test"):
    return {"arm": arm, "qid": qid, "split": split, "source_line": 1, "question": "服务大厅几点上班？",
            "reference": REF, "keywords": None, "answer": answer, "scores": {"token_f1": 0.5},
            "passages": None if passages is None else [{"id": f"train:{i}", "text": t, "source": "x.jsonl:1"}
                                                      for i, t in enumerate(passages)]}


def rows():
    # the phone number lies past a 30-character clip
    long_passage = "问：服务大厅？\n答：大厅8:00-11:30办公，" + "内容" * 40 + "电话51688446"
    return [
        _row("base", "test-0", "大概9:00上班，电话12345678。", None),
        _row("base", "test-1", "不知道。", None),
        _row("base+retrieval", "test-0", "8:00-11:30。", [long_passage]),
        _row("base+retrieval", "test-1", "电话51688446", ["问：电话？\n答：51688446"]),
    ]


def test_each_answer_is_accounted_for_with_the_passages_as_the_prompt_clipped_them():
    rs = rows()
    assert account_facts(rs, {"base+retrieval": 30}) is True
    base0, base1, retr0, retr1 = rs
    assert base0["facts"] == {"facts": ["8:00-11:30", "51688446"], "in_passages": None, "in_answer": [],
                              "lost": [], "invented": ["9:00", "12345678"]}
    assert base0["scores"] == {"token_f1": 0.5, "passage_recall": None, "answer_recall": 0.0, "kept": None,
                               "invented": 2.0}
    # clipped at 30 characters, the passage shows the hours but not the phone number
    assert retr0["facts"]["in_passages"] == ["8:00-11:30"] and retr0["scores"]["passage_recall"] == 0.5
    assert retr0["scores"]["kept"] == 1.0 and retr0["scores"]["invented"] == 0.0
    assert retr1["scores"] == {"token_f1": 0.5, "passage_recall": 0.5, "answer_recall": 0.5, "kept": 1.0,
                               "invented": 0.0}
    assert base1["scores"]["invented"] == 0.0
    assert account_facts(rs, {"base+retrieval": 30}) is False          # a second pass changes nothing


def test_the_summary_averages_and_compares_the_fact_figures():
    rs = rows()
    account_facts(rs, {"base+retrieval": 30})
    s = summarize(rs, ["base", "base+retrieval"], [("base+retrieval", "base")], n_boot=200)["test"]
    base, retr = s["means"]["base"], s["means"]["base+retrieval"]
    assert (base["passage_recall"], base["answer_recall"], base["kept"], base["invented"]) == (None, 0.0, None, 1.0)
    assert (retr["passage_recall"], retr["answer_recall"], retr["kept"], retr["invented"]) == (0.5, 0.5, 1.0, 0.0)
    assert s["behaviour"]["base"]["with_invented"] == 1 and s["behaviour"]["base+retrieval"]["with_invented"] == 0
    invented = s["comparisons"][0]["metrics"]["invented"]
    assert (invented["diff"], invented["n"]) == (-1.0, 2)              # (0 − 2 + 0 − 0) / 2
    assert fact_value("invented", 1.0) == "1.00" and fact_value("kept", 0.5) == "50.0"
    assert fact_diff("answer_recall", {"diff": 0.5, "lo": 0.0, "hi": 1.0, "n": 2}) == "+50.0 [+0.0, +100.0] (n=2)"


def test_summary_md_shows_where_the_facts_are_lost_and_the_csv_which_ones():
    rs = rows()
    account_facts(rs, {"base+retrieval": 30})
    splits = summarize(rs, ["base", "base+retrieval"], [("base+retrieval", "base")], n_boot=200)
    summary = {"arms": ["base", "base+retrieval"], "metrics": [], "fact_metrics": ["passage_recall", "answer_recall",
                                                                                 "kept", "invented"],
               "splits": splits, "resources": {"base": {}, "base+retrieval": {}}, "data": {},
               "did_it_learn": {a: {"held_out": None, "train": None} for a in ("base", "base+retrieval")},
               "warnings": []}
    md = render_markdown(summary, "en")
    assert "### Where the facts are lost" in md
    assert "| Facts in the passages | – | 50.0 |" in md
    assert "| Kept (of the passages' facts, share stated) | – | 100.0 |" in md
    assert "| Invented (specifics per answer in neither passages nor question) | 1.00 | 0.00 | -1.00 [" in md
    assert "Answers with at least one invented: base 1 / 2, base+retrieval 0 / 2." in md
    assert "### 事实在哪里丢失" in render_markdown(summary, "zh")
    flat = {r["qid"]: r for r in flat_rows(rs, ["base", "base+retrieval"])}
    assert flat["test-0"]["invented_facts:base"] == ["9:00", "12345678"]
    assert flat["test-0"]["lost_facts:base+retrieval"] == [] and flat["test-0"]["kept:base+retrieval"] == 1.0
    assert flat["test-0"]["passage_recall:base"] is None
