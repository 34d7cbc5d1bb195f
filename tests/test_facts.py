"""Fact accounting: passage recall, answer recall, kept and invented, computed by hand on small cases."""
from hust_sft import facts, metrics

REFERENCE = "请于8:00-11:30到学生活动中心办理，电话51688446，网址http://ecard.bjtu.edu.cn。"
QUESTION = "一卡通在哪里补办？"


def test_facts_are_the_key_phrases_then_the_keywords_without_repeats():
    assert metrics.key_phrases(REFERENCE) == ["8:00-11:30", "51688446", "http://ecard.bjtu.edu.cn"]
    assert facts.facts(REFERENCE, ["补办", "51688446"]) == ["8:00-11:30", "51688446", "http://ecard.bjtu.edu.cn",
                                                          "补办"]


def test_a_fact_lost_between_the_passages_and_the_answer_counts_against_kept():
    passages = ["问：一卡通丢了怎么办？\n答：8:00-11:30在服务大厅办理，电话51688446。", "问：网址？\n答：见官网"]
    answer = "工作时间8：00-11:30，可以去一站式服务大厅。"   # full-width colon still matches
    acc = facts.account(answer, REFERENCE, question=QUESTION, passages=passages)
    assert acc.in_passages == ["8:00-11:30", "51688446"]
    assert acc.in_answer == ["8:00-11:30"]
    assert acc.lost == ["51688446"]
    assert acc.scores() == {"passage_recall": 2 / 3, "answer_recall": 1 / 3, "kept": 1 / 2, "invented": 0.0}


def test_specifics_in_neither_the_passages_nor_the_question_are_invented():
    passages = ["问：x\n答：服务大厅位于学生活动中心一层，8:00-11:30办公。"]
    answer = "1. 到学生活动中心一层，8:00-12:00办理\n2. 或到教务处，电话51688888，费用20元。"
    acc = facts.account(answer, REFERENCE, question="2号楼附近有吗？", passages=passages)
    # "1." / "2." are list markers; 活动中心 and 一层's digits are in the passage; 20 (元) is an amount
    assert acc.invented == ["8:00-12:00", "教务处", "51688888", "20"]
    assert acc.scores()["invented"] == 4.0


def test_a_number_from_the_question_is_not_invented():
    acc = facts.account("2号楼有无线网络。", "有。", question="2号楼有无线网络吗？", passages=[])
    assert acc.invented == [] and acc.kept is None and acc.passage_recall is None


def test_without_passages_recall_of_passages_and_kept_are_undefined():
    acc = facts.account("电话51688446", REFERENCE, question=QUESTION, passages=None)
    assert acc.in_passages is None and acc.passage_recall is None and acc.kept is None
    assert acc.answer_recall == 1 / 3
    assert acc.invented == ["51688446"]          # shown nothing: every specific it states is its own


def test_digits_of_a_latin_word_are_not_separate_facts():
    """A bare "6" could never match the answer's token "ipv6": key phrases and specifics keep the word whole."""
    text = "支持IPv6与POP3，端口995。"
    assert metrics.key_phrases(text) == ["IPv6", "POP3", "995"]
    assert facts.specifics(text) == ["995"]
    assert metrics.key_phrase_recall("IPv6、POP3 的端口是995", text) == 1.0


def test_place_names_end_in_a_place_suffix_and_generic_words_do_not_count():
    assert facts.specifics("请到图书馆或财务处，此处有好处，到处都有。") == ["图书馆", "财务处"]
