"""Issue 19: stored XSS, checked in headless Chromium on the running public Space.

Text a visitor can leave for the next one reaches the page through run names (the owner's folders), a
run's training data (uploaded by a visitor when training is open to all), which Chat shows as passages,
Evaluate as questions and references, Blind A/B as drawn questions, and the answers and the vote table.
Every such place is filled with script payloads; the page must show them as text and run none of them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import fill, pick, tab, wait_for

from hust_sft.data.split import split_of
from hust_sft.settings import DataSettings

from public_space import adapter_files, make_run

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; the browser suite must run in CI", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

MARK = "window.__xss=(window.__xss||[]).concat"
PAYLOADS = [f'<img src=x onerror="{MARK}(\'img\')">', f"<script>{MARK}('script')</script>",
            f"[link](javascript:{MARK}('link'))", f'<svg onload="{MARK}(\'svg\')"></svg>',
            f'<iframe srcdoc="<script>parent.{MARK}(\'iframe\')</script>"></iframe>',
            f'<a href="javascript:{MARK}(\'a\')" id="xss-a">a</a>', f"<details open ontoggle=\"{MARK}('details')\">"]
QUESTION = "校园卡丢了怎么办？"
RUN, NAMED = "xss-run", "x<img src=x onerror=window.__xss=1>"
# Elements a payload would have made: an image, frame or link of the payloads, or any element with an
# event-handler attribute that mentions __xss (Gradio's own inline config script holds the data as JSON).
PLANTED = """() => [...document.querySelectorAll("img[src='x'], iframe[srcdoc], a[href^='javascript:'], body *")]
  .filter(e => e.matches("img[src='x'], iframe[srcdoc], a[href^='javascript:']")
               || [...e.attributes].some(a => a.name.startsWith("on") && a.value.includes("__xss")))
  .map(e => e.outerHTML.slice(0, 200))"""


@pytest.fixture(scope="module")
def runs(space):
    data = space.tmp / "xss-data" / "handbook.jsonl"
    data.parent.mkdir()
    # A question's split is a hash of its text (hust_sft.data.split): 20 of them may hold no test question
    # (0.9^20 = 12%), and then Evaluate and Blind A/B have nothing to show. Keep going until 3 are test.
    records, i, ratios = [], 0, (DataSettings().val_ratio, DataSettings().test_ratio)  # make_run's defaults
    while len(records) < 20 or sum(split_of(q, *ratios) == "test" for q, _ in records) < 3:
        p = PAYLOADS[i % len(PAYLOADS)]
        records.append((f"{QUESTION}{i} {p}", f"补办校园卡 {p}"))
        i += 1
    with data.open("w", encoding="utf-8") as f:
        for q, a in records:
            f.write(json.dumps({"conversations": [{"role": "user", "content": q},
                                                  {"role": "assistant", "content": a}]}, ensure_ascii=False) + "\n")
    files = adapter_files()
    for name in (RUN, NAMED):
        make_run(space.runs_dir, name, data, files=files)
    return data


@pytest.fixture(scope="module")
def page(space, runs):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        pg.set_default_timeout(120_000)
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.goto(space.url + "/")
        pg.wait_for_selector("#train-progress-box")
        pg.get_by_label("English").check()
        pg.wait_for_selector("text=Start training")
        pg.dialogs = dialogs
        yield pg
        browser.close()


def no_script_ran(page):
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.evaluate(PLANTED) == []


def test_run_names_show_as_text(page):
    wait_for(lambda: "onerror" in page.inner_text("#runs-table"))
    no_script_ran(page)


def test_passages_under_chat_answers_show_as_text(page):
    tab(page, "Chat")
    pick(page, "chat-run", RUN)
    for side in ("base", "tuned"):
        page.locator(f"#chat-{side}-retrieval input[type=checkbox]").check()
    fill(page, "chat-question", QUESTION + " <img src=x onerror=window.__xss=1>")
    page.click("#chat-send")
    wait_for(lambda: "补办校园卡" in page.inner_text("#chat-tuned-sources"), timeout=300)
    wait_for(lambda: page.locator("#chat-tuned [data-testid=bot]").count() == 1, timeout=300)
    no_script_ran(page)


def test_evaluation_questions_and_answers_show_as_text(page):
    tab(page, "Evaluate")
    pick(page, "eval-run", RUN)
    for name, value in (("limit", "2"), ("batch_size", "2"), ("max_new_tokens", "4")):
        fill(page, f"setting-{name}", value)
    page.click("#eval-go")
    wait_for(lambda: "补办校园卡" in page.inner_text("#eval-per-question"), timeout=600)
    no_script_ran(page)


def test_blind_pairs_and_votes_show_as_text(page):
    tab(page, "Blind A/B")
    pick(page, "arena-run", RUN)
    page.click("#arena-draw")
    wait_for(lambda: QUESTION in page.locator("#arena-question textarea").input_value())
    page.click("#arena-new")
    wait_for(lambda: page.locator("#arena-a textarea").input_value().strip() != "", timeout=300)
    page.click("#arena-vote-a")
    wait_for(lambda: RUN in page.inner_text("#arena-status"), timeout=120)
    no_script_ran(page)
