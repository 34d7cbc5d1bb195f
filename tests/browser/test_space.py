"""The Space in real headless Chromium, in demo mode: train, re-attach after reload, stop, chat, evaluate, vote.

One app subprocess and one browser for the module; the tests run in file order and build on each other
(the stopped run's adapter is what Chat, Evaluate and Blind A/B use).

Screenshots of every tab (zh UI) are written only when asked, so a test run never rewrites tracked files:

    HUST_SFT_SCREENSHOTS=docs/screenshots python -m pytest tests/browser -q

(a relative directory is taken from the repository root; look at each PNG before committing it).
"""
import json
import os
import re
import time
from pathlib import Path

import pytest
from helpers import fill, pick, start_app, stop_app, tab, wait_for

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(ROOT, os.environ["HUST_SFT_SCREENSHOTS"]) if os.environ.get("HUST_SFT_SCREENSHOTS") else None
RUN = "ui-run"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; the browser suite must run in CI", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HUST_SFT_DATA_DIR": str(tmp / "data"),
           "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false"}
    try:
        # On the shared 2-core machine with other suites running, the demo app has taken 100 s to start.
        proc, url = start_app(tmp, env, ("--runs", str(tmp / "runs")), timeout_s=300)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield url + "/", tmp
    stop_app(proc, tmp / "runs")


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        pg.page_errors = []  # uncaught errors in the page's scripts (tests clear it before what they watch)
        pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
        pg.set_default_timeout(60_000)
        pg.goto(server[0])
        pg.wait_for_selector("#train-progress-box")
        yield pg
        browser.close()


def progress(page) -> tuple[str, int]:
    box = page.locator("#train-progress")
    return box.get_attribute("data-status"), int(box.get_attribute("data-step") or 0)


def df_rows(page, elem_id: str) -> int:
    """Data rows of a gr.Dataframe (it renders rows lazily; the grid's aria-rowcount counts them all)."""
    count = page.get_attribute(f"#{elem_id} [role=grid]", "aria-rowcount")
    return int(count) - 1 if count else 0


def heads(page, elem_id: str) -> list[str]:
    """A gr.Dataframe's column heads as shown."""
    return [h.strip() for h in page.locator(f"#{elem_id} thead th").all_inner_texts() if h.strip()]


def toast_text(page) -> str:
    """The text of the toasts (gr.Error / gr.Warning messages) on the page."""
    return " ".join(page.locator(".toast-body, [data-testid=toast-body]").all_inner_texts())


def error_badges(page, elem_id: str) -> int:
    """Status-tracker "Error" badges stamped on a component after a failed event."""
    return page.locator(f"#{elem_id} [data-testid=status-tracker] .error, #{elem_id} .error").count()


def shot(page, name: str):
    if SHOTS is None:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_page_loads_in_chinese_with_the_demo_banner_and_switches_language(page):
    assert "华科学生手册 LoRA 微调" in page.inner_text("body")
    assert "随机权重" in page.inner_text("#demo-banner")
    page.get_by_label("English").check()
    page.wait_for_selector("text=Start training")
    wait_for(lambda: page.get_by_role("tab", name="Evaluate").is_visible())  # labels update one by one
    # The preview table's column heads follow the language too (they were 划分 / 问题 / 回答 in English).
    wait_for(lambda: heads(page, "preview-table") == ["Split", "Question", "Answer"])
    page.get_by_label("中文").check()
    page.wait_for_selector("text=开始训练")
    page.click("#preview-btn")
    wait_for(lambda: "40" in page.inner_text("#preview-report"))
    assert df_rows(page, "preview-table") == 5


def test_train_shows_live_progress_and_loss_curve_then_reattaches_after_reload(page):
    fill(page, "run-name", RUN)
    page.get_by_text("显存与速度", exact=True).click()
    page.get_by_text("训练", exact=True).last.click()
    for name, value in (("batch_size", "2"), ("grad_accum", "1"), ("logging_steps", "1"), ("max_length", "256")):
        fill(page, f"setting-{name}", value)
    fill(page, "setting-max_steps", "400")
    page.page_errors.clear()
    page.click("#train-start")
    wait_for(lambda: RUN in page.inner_text("#train-message"))
    wait_for(lambda: progress(page)[1] >= 2, timeout=300)  # the trainer subprocess starts slowly on a busy machine
    status, step = progress(page)
    assert status == "running" and page.locator("#train-progress").get_attribute("data-total") == "400"
    assert re.search(r"token/秒", page.inner_text("#train-progress"))
    # A drawn line: Vega's path has a non-empty outline (an undrawn series leaves d="" or no path at all).
    wait_for(lambda: any(len(d or "") > 10 for d in page.locator("#loss-plot .mark-line path").evaluate_all(
        "els => els.map(e => e.getAttribute('d'))")))
    # Both series in the legend: the validation loss before training came first, and the training loss
    # that followed is still drawn (the plot fixes its legend at its first frame).
    wait_for(lambda: page.locator("#loss-plot .role-legend-label text").all_text_contents() == ["训练损失", "验证损失"])
    wait_for(lambda: progress(page)[1] >= 6)  # a few more points, for the screenshot
    # No uncaught script errors while the loss plot redraws every second (there were two offsetWidth ones).
    assert page.page_errors == []
    # The log tail reads as the terminal does, not as train.log's JSON lines.
    log = page.input_value("#train-log textarea")
    wait_for(lambda: "验证损失" in page.input_value("#train-log textarea"))
    assert '"type"' not in page.input_value("#train-log textarea") and "{" not in log
    shot(page, "train")
    # A second Start names the running run instead of starting another.
    page.click("#train-start")
    wait_for(lambda: "已有运行正在训练" in page.inner_text("#train-message"))
    assert RUN in page.inner_text("#train-message")
    page.reload()
    page.wait_for_selector("#train-progress")
    status2, step2 = wait_for(lambda: progress(page) if progress(page)[1] >= step else None)
    assert status2 == "running" and RUN in page.inner_text("#train-progress")


def test_stop_saves_the_adapter_and_the_runs_table_says_stopped(page, server):
    page.click("#train-stop")
    wait_for(lambda: progress(page)[0] == "stopped", timeout=60)
    assert (server[1] / "runs" / RUN / "adapter" / "adapter_config.json").is_file()
    wait_for(lambda: "已停止" in page.inner_text("#runs-table"))
    # A finished run's figures say what it took: no "?", no ETA, no figure nobody measured.
    figures = page.inner_text("#train-progress")
    assert "?" not in figures and "预计剩余" not in figures and "用时" in figures and "峰值内存" in figures


def test_chat_streams_both_answers_and_lists_a_retrieval_run_s_passages(page):
    page.reload()
    page.wait_for_selector("#train-progress")
    tab(page, "对话")
    pick(page, "chat-run", RUN)
    # The run was trained with the defaults (retrieval "train"): both sides ask with its passages by default.
    switches = [page.locator(f"#chat-{side}-retrieval input[type=checkbox]") for side in ("base", "tuned")]
    wait_for(lambda: all(s.is_checked() for s in switches))
    # The demo model writes visible noise, also for a question asked with passages (it used to answer blank
    # lines: two empty bubbles for a first visitor).
    fill(page, "chat-question", "校园卡丢了怎么办？")
    page.click("#chat-send")
    for box in ("#chat-base", "#chat-tuned"):
        wait_for(lambda box=box: page.locator(f"{box} [data-testid=bot]").count() == 1
                 and len(page.locator(f"{box} [data-testid=bot]").inner_text().strip().strip("…")) >= 5)
    assert page.locator("#chat-base [data-testid=user]").inner_text().strip() == "校园卡丢了怎么办？"
    wait_for(lambda: settled(page))
    shot(page, "chat")
    # The passages are listed under each answer by file name and line.
    for side in ("base", "tuned"):
        wait_for(lambda side=side: "train:" in page.inner_text(f"#chat-{side}-sources"))
    assert "sample_handbook.jsonl:" in page.inner_text("#chat-tuned-sources")
    assert str(ROOT) not in page.inner_text("#chat-tuned-sources")
    # ... in the page's language, after a switch too ("Sources given to the model" stayed English).
    assert "提供给模型的资料" in page.inner_text("#chat-tuned-sources")
    page.get_by_label("English").check()
    wait_for(lambda: "Sources given to the model" in page.inner_text("#chat-tuned-sources"))
    page.get_by_label("中文").check()
    wait_for(lambda: "提供给模型的资料" in page.inner_text("#chat-tuned-sources"))
    # Without retrieval no sources are listed.
    for s in switches:
        s.uncheck()
    fill(page, "chat-question", "校园卡丢了怎么办？")
    page.click("#chat-send")
    wait_for(lambda: page.locator("#chat-tuned [data-testid=bot]").count() == 2 and settled(page))
    assert page.inner_text("#chat-tuned-sources").strip() == ""


def settled(page) -> bool:
    """Both answers stopped growing: streaming is over."""
    before = page.inner_text("#chat-base") + page.inner_text("#chat-tuned")
    time.sleep(1.5)
    return before == page.inner_text("#chat-base") + page.inner_text("#chat-tuned") and "…" not in before[-3:]


def test_chat_clear_then_a_second_question_shows_only_the_second(page):
    """Clear while an answer streams, then ask again: the first question used to come back."""
    tab(page, "对话")
    fill(page, "chat-question", "食堂几点开门？")
    page.click("#chat-send")
    wait_for(lambda: "食堂几点开门？" in page.inner_text("#chat-base"))
    wait_for(lambda: len(page.locator("#chat-base [data-testid=bot]").last.inner_text().strip().strip("…")) > 0)
    page.click("#chat-clear", no_wait_after=True)  # mid-stream: the demo answers up to max new tokens
    chats = (lambda: page.inner_text("#chat-base") + page.inner_text("#chat-tuned"))
    wait_for(lambda: "食堂几点开门？" not in chats(), timeout=60)  # the Clear landed (later on a busy machine)
    time.sleep(3)  # an answer left streaming would draw its next chunk, the question with it, within this
    assert "食堂几点开门？" not in page.inner_text("#chat-base") + page.inner_text("#chat-tuned")
    wait_for(lambda: page.locator("#chat-base [data-testid=user]").count() == 0
             and page.locator("#chat-tuned [data-testid=user]").count() == 0)
    fill(page, "chat-question", "宿舍几点关门？")
    page.click("#chat-send")
    wait_for(lambda: page.locator("#chat-tuned [data-testid=bot]").count() == 1 and settled(page))
    for side in ("base", "tuned"):
        assert page.locator(f"#chat-{side} [data-testid=user]").all_inner_texts() == ["宿舍几点关门？"]


def test_a_failed_answer_keeps_the_question_and_shows_one_message(page):
    """An adapter that cannot be read (a Hub id, offline): one message, the question kept, no "Error" badges."""
    tab(page, "对话")
    before = {side: page.locator(f"#chat-{side} [data-testid=bot]").count() for side in ("base", "tuned")}
    fill(page, "chat-hub", "someone/not-an-adapter")
    fill(page, "chat-question", "图书馆几点开门？")
    page.click("#chat-send")
    wait_for(lambda: "无法回答" in toast_text(page), timeout=180)
    wait_for(lambda: page.input_value("#chat-question textarea") == "图书馆几点开门？")
    for elem_id in ("chat-question", "chat-base", "chat-tuned"):
        assert error_badges(page, elem_id) == 0, elem_id
    for side in ("base", "tuned"):  # the unanswered turn is not left behind as a "…" bubble
        assert page.locator(f"#chat-{side} [data-testid=bot]").count() == before[side]
        assert "图书馆几点开门？" not in page.inner_text(f"#chat-{side}")
    fill(page, "chat-hub", "")


def test_evaluate_s_chinese_labels_and_slider_maxima_have_room(page):
    """Seven widgets in one row squeezed the labels to a character per line and clipped the sliders' maxima."""
    tab(page, "评测")
    for name in ("limit", "batch_size", "bootstrap", "max_new_tokens", "train_sample", "arms"):
        box = page.locator(f"#setting-{name}").bounding_box()
        assert box["width"] >= 240, (name, box)
        label = page.locator(f"#setting-{name} [data-testid=block-info], #setting-{name} .block-title, "
                             f"#setting-{name} label span").first
        assert label.bounding_box()["height"] < 3 * 24, name   # a label is one or two lines, not a column
    for name in ("batch_size", "bootstrap", "train_sample"):  # every slider shows its maximum in full
        clipped = page.locator(f"#setting-{name}").evaluate(
            "el => [...el.querySelectorAll('*')].filter(e => e.children.length === 0 && e.textContent.trim()"
            " && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible').length")
        assert clipped == 0, name


def test_evaluate_shows_the_summary_and_per_question_tables(page, server):
    tab(page, "评测")
    pick(page, "eval-run", RUN)
    for name, value in (("limit", "2"), ("max_new_tokens", "4"), ("bootstrap", "100")):
        fill(page, f"setting-{name}", value)
    page.click("#eval-go")
    wait_for(lambda: df_rows(page, "eval-per-question") >= 1, timeout=120)
    from hust_sft.i18n import t
    from hust_sft.metrics import METRICS

    # limit 2: a quick look, written beside the run's full evaluation in eval/
    summary = json.loads((server[1] / "runs" / RUN / "eval-first2" / "summary.json").read_text(encoding="utf-8"))
    assert t("metric.exact_match", "zh") in page.inner_text("#eval-summary")
    # one row per metric and set, then one per fact measure (passage recall, kept, invented...) and set
    rows = (len(METRICS) + len(summary["fact_metrics"])) * len(summary["splits"])
    assert df_rows(page, "eval-summary") == rows
    assert t("metric.kept", "zh") in page.inner_text("#eval-summary")
    assert df_rows(page, "eval-learn") == len(summary["arms"])                      # "did it learn?" per arm
    # Bars grouped by metric in the table's order: each metric's name under its base and its tuned bar
    # (a metric with no value, e.g. keyword recall without keywords, has no bar).
    means = summary["splits"]["test"]["means"]
    expected = [t(f"metric.{k}", "zh") for k in METRICS for m in summary["arms"] if means[m][k] is not None]
    wait_for(lambda: page.locator("#eval-bars .mark-rect path").count() == len(expected))
    labels = [x.replace("\u200b", "") for x in
              page.locator("#eval-bars .role-axis-label text").all_text_contents()]
    assert labels[:len(expected)] == expected
    assert labels[len(expected):] == ["0", "20", "40", "60", "80", "100"]   # a numeric % axis
    assert page.locator("#eval-bars .role-legend-label text").all_text_contents() == summary["arms"]
    shot(page, "evaluate")
    # The headings and tables follow a language switch (they stayed in the language they were made in).
    assert t("eval.md.title", "zh") in page.inner_text("#eval-summary-md")
    page.get_by_label("English").check()
    wait_for(lambda: t("eval.md.title", "en") in page.inner_text("#eval-summary-md")
             and t("metric.exact_match", "en") in page.inner_text("#eval-summary"))
    assert "0 of the 0" not in page.inner_text("#eval-summary-md")
    page.get_by_label("中文").check()
    wait_for(lambda: t("eval.md.title", "zh") in page.inner_text("#eval-summary-md"))


def test_blind_vote_reveals_identities_and_updates_the_results(page):
    from hust_sft.i18n import t

    tab(page, "盲评 A/B")
    pick(page, "arena-run", RUN)
    page.click("#arena-draw")
    wait_for(lambda: page.input_value("#arena-question textarea").strip())
    page.click("#arena-new")
    wait_for(lambda: page.input_value("#arena-a textarea").strip() and page.input_value("#arena-b textarea").strip())
    assert RUN not in page.inner_text("#arena-status")            # no identities before the vote
    answer_a = page.input_value("#arena-a textarea")
    page.reload()                                                  # a reload re-shows the unvoted pair
    page.wait_for_selector("#train-progress")
    tab(page, "盲评 A/B")
    wait_for(lambda: page.input_value("#arena-a textarea") == answer_a)
    page.click("#arena-vote-a")
    wait_for(lambda: RUN in page.inner_text("#arena-status"))
    wait_for(lambda: df_rows(page, "arena-results") == 1)
    assert RUN in page.inner_text("#arena-results")
    page.get_by_label("English").check()                          # the table's heads follow the language
    wait_for(lambda: t("ui.arena.col.win_rate", "en") in page.inner_text("#arena-results"))
    assert t("ui.arena.col.win_rate", "zh") not in page.inner_text("#arena-results")
    page.get_by_label("中文").check()
    wait_for(lambda: t("ui.arena.col.win_rate", "zh") in page.inner_text("#arena-results"))
    page.click("#arena-vote-b")                                    # the same pair again: refused
    wait_for(lambda: "请先生成两个回答" in page.inner_text("#arena-status")
             or "已经为这一对投过票" in page.inner_text("#arena-status"))
    shot(page, "arena")
    tab(page, "发布")
    shot(page, "publish")


def test_publish_off_a_space_names_hf_token_not_a_button_in_both_languages(page):
    from hust_sft.i18n import t

    tab(page, "发布")
    assert "HF_TOKEN" in page.inner_text("#publish-intro") and "在下方登录" not in page.inner_text("#publish-intro")
    pick(page, "publish-run", RUN)
    fill(page, "publish-repo", "me/hust-sft-demo")
    page.click("#publish-go")
    wait_for(lambda: "HF_TOKEN" in page.inner_text("#publish-result"), timeout=120)
    assert "用按钮登录" not in page.inner_text("#publish-result")
    page.get_by_label("English").check()
    wait_for(lambda: t("ui.publish.failed", "en", error="").strip() in page.inner_text("#publish-result"))
    assert "button to" not in page.inner_text("#publish-result") and "HF_TOKEN" in page.inner_text("#publish-result")
    page.get_by_label("中文").check()
    wait_for(lambda: "发布失败" in page.inner_text("#publish-result"))
