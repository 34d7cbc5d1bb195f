"""Metric values computed by hand (the arithmetic is in the comments)."""
import math

import pytest

from hust_sft import metrics as M


def test_normalize_folds_width_case_punctuation_and_space():
    assert M.normalize("Ｈｅｌｌｏ，　Ｗｏｒｌｄ！") == "hello world"
    assert M.normalize("  a+b=c  ") == "a b c"        # symbols (S*) become spaces too
    assert M.normalize("！？。，") == ""


def test_tokens_cjk_single_latin_and_digit_runs():
    assert M.tokens("ＡＢＣ１２３，Hello World！2024年9月") == ["abc123", "hello", "world", "2024", "年", "9", "月"]
    assert M.tokens("Wi-Fi密码123") == ["wi", "fi", "密", "码", "123"]


def test_exact_match():
    assert M.exact_match("Hello, World!", "hello world") == 1.0
    assert M.exact_match("１２３。", "123") == 1.0          # full-width digits and 。 fold away
    assert M.exact_match("北京 大学", "北京大学") == 1.0      # spacing between CJK characters is not content
    assert M.exact_match("a b", "ab") == 0.0
    assert M.exact_match("", "答案") == 0.0


def test_token_f1_chinese_english_mixed():
    # 学校在北京 (5) vs 学校位于北京市 (7): common 学校北京 = 4 -> F1 = 2*4/(5+7)
    assert M.token_f1("学校在北京", "学校位于北京市") == pytest.approx(2 / 3)
    # multiset: pred the,the,the vs ref the,cat -> common 1 -> 2*1/(3+2)
    assert M.token_f1("the the the", "The cat.") == pytest.approx(0.4)
    # wi fi 密 码 123 vs wifi 密 码 是 123: common 密,码,123 = 3 -> 2*3/(5+5)
    assert M.token_f1("Wi-Fi密码123", "WiFi密码是123") == pytest.approx(0.6)


def test_empty_and_punctuation_only_answers():
    for f in (M.token_f1, M.lcs_f1):
        assert f("", "有答案") == 0.0
        assert f("！？。", "有答案") == 0.0
        assert f("", "") == 1.0
        assert f("。", "！") == 1.0                          # both empty after normalisation
    assert M.rouge_l("", "有答案") == 0.0
    assert M.bleu4("", "有答案") == 0.0


def test_lcs_f1_is_contiguous_unlike_token_f1():
    # longest common substring of 学校在北京 / 学校位于北京市 is 学校 (or 北京): 2 -> 2*2/(5+7)
    assert M.lcs_f1("学校在北京", "学校位于北京市") == pytest.approx(1 / 3)
    assert M.lcs_f1("ｂ ａ", "a b") == pytest.approx(0.5)  # full-width folded; run of 1 -> 2*1/(2+2)


def test_rouge_l_scores_chinese_words_never_as_empty():
    # jieba: 我/爱/北京/天安门 vs 我/爱/北京: LCS 3 -> 2*3/(4+3)
    assert M.jieba_words("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert M.rouge_l("我爱北京天安门", "我爱北京") == pytest.approx(6 / 7)
    assert M.rouge_l("研究生院", "研究生院") == 1.0
    # English words; "." is a word as in rouge_chinese: LCS the,cat,on,the,mat,. = 6 of 7 each -> 12/14
    assert M.rouge_l("The cat sat on the mat.", "The cat is on the mat.") == pytest.approx(6 / 7)


def test_rouge_l_keeps_rouge_chinese_blank_line_quirk():
    # rouge_chinese counts each blank line after 。 as an empty word: ref words 在,这里,。,"","",好 (6);
    # pred 在这里 -> 在,这里 (2); LCS 2 -> 2*2/(2+6)
    assert M.rouge_l("在这里", "在这里。\n\n好") == pytest.approx(0.5)


def test_bleu4_characters_with_method3_smoothing():
    assert M.bleu4("今天天气很好", "今天天气很好") == pytest.approx(1.0)
    # 你好/你好: p1=2/2, p2=1/1, p3 and p4 have no n-grams -> 1/2 and 1/4 -> (1*1*1/2*1/4)^(1/4)
    assert M.bleu4("你好", "你好") == pytest.approx(2 ** -0.75)
    # all precisions 1, brevity penalty exp(1 - 8/4)
    assert M.bleu4("abcd", "abcdefgh") == pytest.approx(math.exp(-1))
    assert M.bleu4("xyz", "abc") == 0.0


def test_keyword_recall():
    assert M.keyword_recall("请到主楼３０１室办理", ["主楼", "301", "学生证"]) == pytest.approx(2 / 3)
    assert M.keyword_recall("拨打120", ["12"]) == 0.0               # whole tokens only
    assert M.keyword_recall("anything", None) is None
    assert M.keyword_recall("anything", ["", "。"]) is None         # nothing left after normalisation


def test_key_phrases_and_recall():
    ref = ("请于2024年9月1日前访问 http://xsc.hust.edu.cn 或致电027-87541234，"
           "邮箱office@hust.edu.cn，见《学生手册》“绿色通道”。")
    assert M.key_phrases(ref) == ["2024年9月1日", "http://xsc.hust.edu.cn", "027-87541234", "office@hust.edu.cn",
                                  "学生手册", "绿色通道"]
    # has the date, the URL and 绿色通道: 3 of 6
    pred = "2024年9月1日之前请登录http://xsc.hust.edu.cn，办理绿色通道"
    assert M.key_phrase_recall(pred, ref) == pytest.approx(0.5)
    assert M.key_phrases("1. 第一步\n2、第二步") == []                # list markers are not facts
    assert M.key_phrases("借书上限20本，开放时间8:00-22:00。") == ["20", "8:00-22:00"]
    assert M.key_phrases("Connect to the campus VPN or WiFi first.") == ["VPN", "WiFi"]
    assert M.key_phrase_recall("好的", "好的。") is None


def test_score_and_mean():
    s = M.score("主楼301", "在主楼301", keywords=["301"])
    assert set(s) == set(M.METRICS)
    assert s["keyword_recall"] == 1.0 and s["exact_match"] == 0.0
    assert M.score("a", "b")["keyword_recall"] is None
    assert M.mean([1.0, None, 0.0]) == 0.5
    assert M.mean([None, None]) is None


def test_paired_bootstrap_constant_difference_has_zero_width():
    assert M.paired_bootstrap([0.2] * 10, [0.7] * 10) == pytest.approx((0.5, 0.5, 0.5))


def test_paired_bootstrap_interval_is_seeded_and_sensible():
    a = [0.0] * 100
    b = [0.0, 1.0] * 50                  # diff mean 0.5, sd 0.5 -> 95% CI about 0.5 +- 0.098
    first = M.paired_bootstrap(a, b, n=2000, seed=0)
    assert first == M.paired_bootstrap(a, b, n=2000, seed=0)
    spread = [i / 100 for i in range(100)]
    assert M.paired_bootstrap(a, spread, seed=0) != M.paired_bootstrap(a, spread, seed=1)
    mean, lo, hi = first
    assert mean == 0.5 and 0.38 < lo < 0.43 and 0.57 < hi < 0.62


def test_paired_bootstrap_drops_unpaired_none():
    assert M.paired_bootstrap([1.0, None, 0.0], [1.0, 1.0, None]) == (0.0, 0.0, 0.0)
    assert M.paired_bootstrap([None], [1.0]) == (None, None, None)


def test_win_rate_interval_wilson():
    assert M.win_rate_interval(0, 0, 0) == (None, None, None)
    rate, lo, hi = M.win_rate_interval(5, 5, 0)        # textbook Wilson 5/10: [0.2366, 0.7634]
    assert rate == 0.5 and lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    rate, lo, hi = M.win_rate_interval(10, 0, 0)       # 10/10: [0.7225, 1]
    assert rate == 1.0 and lo == pytest.approx(0.7225, abs=1e-4) and hi == pytest.approx(1.0)
    assert M.win_rate_interval(2, 0, 2)[0] == 0.75     # ties count half: (2 + 1) / 4


def test_metrics_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hust_sft.metrics; print('torch' in sys.modules or 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("text, unit", [
    # a phrase back to back, 3 times (punctuation is not a token)
    ("请联系辅导员。请联系辅导员。请联系辅导员。", "请 联 系 辅 导 员"),
    ("我们我们我们", "我 们"),                                 # the shortest unit: 2 tokens
    ("的的的的的的", "的 的"),                                 # one token 6 times = 2 tokens 3 times
    ("Go to the office. Go to the office. Go to the office.", "go to the office"),
    # the same line 3 times, list markers ignored
    ("1. 到教务处办理\n2. 到教务处办理\n3. 到教务处办理", "到 教 务 处 办 理"),
    ("- 携带学生证\n- 携带学生证\n- 携带学生证", "携 带 学 生 证"),
    # 8+ tokens 3 times anywhere: the phrase's first 8 tokens
    ("补办学生证在一站式服务大厅办理，补办一卡通在一站式服务大厅办理，补办校园卡在一站式服务大厅办理",
     "在 一 站 式 服 务 大 厅"),
    # not loops
    ("请联系辅导员。请联系辅导员。", None),                      # twice
    ("的的的的的", None),                                       # 5 times one token: 的的 only twice in a row
    ("好\n好\n好", None),                                       # a line too short to count
    ("1. 去教务\n2. 去教务\n3. 去教务", None),                   # 3-token lines, not back to back
    ("图书馆8:00开门，22:00闭馆。图书馆周末也开放。图书馆在东区。", None),   # a word used 3 times
    ("", None),
])
def test_loop_unit_exact_cases(text, unit):
    assert M.loop_unit(text) == unit
    assert M.loops(text) is (unit is not None)


def test_loop_check_on_a_long_answer_finds_only_the_repeat_at_its_end():
    text = "".join(chr(0x4e00 + (i * 7919) % 20000) for i in range(4096))  # no repeats at all
    assert M.loop_unit(text) is None
    assert M.loop_unit(text + ("挂失补办手续" * 3)) == "挂 失 补 办 手 续"
