"""Issue 9 items 2 and 3, attacked through the running Space as an anonymous visitor.

2. Every Hub read a visitor triggers is anonymous: the fake Hub's log shows no Authorization header.
3. Adapters a visitor names are bounded: listed runs by name and validated Hub ids only; rank, size and
   base model checked before loading; one identity loaded once; a failed load leaves the base as it was.
"""
import pytest
from gradio_client.exceptions import AppError

from hust_sft.i18n import t

from public_space import FAKE_TOKEN, SYSTEM_PROMPT, adapter_files, demo_model_dir, make_run

GEN = [8, 0.0, 0.9, 1.0]  # max_new_tokens, temperature (greedy), top_p, repetition_penalty
QUESTION = "校园卡丢了怎么办？"


@pytest.fixture(scope="module")
def owner_run(space):
    """The owner's finished run on the Space (its adapter changes the answers)."""
    from hust_sft.ui.common import SAMPLE_DATA

    run = space.runs_dir / "owner-run"
    if not run.exists():
        make_run(space.runs_dir, "owner-run", SAMPLE_DATA)
    space.client.predict(api_name="/chat_runs")  # what the page does on load: the dropdown lists the run
    return run


def chat(space, run=None, hub="", question=QUESTION):
    """(base answer, tuned answer) of one /chat call by an anonymous visitor."""
    base, tuned, *_ = space.client.predict("en", question, run, hub, SYSTEM_PROMPT, [], [], *GEN, api_name="/chat")
    return base[-1]["content"], tuned[-1]["content"]


def chat_error(space, **kw) -> str:
    with pytest.raises(AppError) as e:
        chat(space, **kw)
    return str(e.value)


def test_visitor_hub_reads_never_carry_the_owner_token(space, owner_run):
    """Chat, Evaluate and Blind A/B with a Hub id: the app asks the Hub anonymously (a private repo of
    the owner is 'not found' for a visitor), and no request of the app ever carried HF_TOKEN."""
    space.hub.clear()
    assert "owner/private-adapter" in chat_error(space, hub="owner/private-adapter")
    with pytest.raises(AppError, match="owner/private-eval"):
        space.client.predict("en", None, "owner/private-eval", None, 2, 2, 100, 4, api_name="/evaluate")
    with pytest.raises(AppError, match="owner/private-arena"):
        space.client.predict(lang_value="en", v=None, q=QUESTION, r=None, h="owner/private-arena",
                             api_name="/arena_new")
    asked = [r for r in space.hub.seen() if "/private-" in r.path]
    assert {r.path.split("?")[0] for r in asked} >= {"/api/models/owner/private-adapter",
                                                    "/api/models/owner/private-eval",
                                                    "/api/models/owner/private-arena"}
    assert all(r.authorization is None for r in asked)
    assert not [r for r in space.hub.seen() if FAKE_TOKEN in (r.authorization or "")]
    assert FAKE_TOKEN not in space.log()


def test_paths_are_not_adapters(space, owner_run):
    """The Hub box takes owner/name[@revision] only; the run box takes a listed run's name only."""
    for value in ["/etc", str(owner_run), str(owner_run / "adapter"), "../owner-run", "runs/owner-run/adapter",
                  "a/b/c", "~/x", "owner/name@../../etc"]:
        message = chat_error(space, hub=value)
        assert t("access.error.adapter_id", "en", value=value) in message, value
    # A folder that exists relative to the app's working directory is refused, not loaded.
    assert t("access.error.adapter_id", "en", value="hust_sft/assets") in chat_error(space, hub="hust_sft/assets")
    # The dropdown: a run's path (not its name) is not a choice.
    with pytest.raises(AppError):
        chat(space, run=str(owner_run))


def test_a_crafted_huge_rank_is_refused_before_any_weight_is_downloaded(space, owner_run):
    files = adapter_files()
    files["adapter_config.json"] = files["adapter_config.json"].replace(b'"r": 4', b'"r": 131072')
    assert b'"r": 131072' in files["adapter_config.json"]
    space.hub.add_model("evil/huge-rank", files)
    message = chat_error(space, hub="evil/huge-rank")
    assert t("access.error.adapter_rank", "en", source="evil/huge-rank", rank=131072, max=256) in message
    assert not [r for r in space.hub.downloads("adapter_model.safetensors") if "evil/huge-rank" in r.path]


def test_too_large_weights_are_refused_from_the_listing(space, owner_run):
    files = adapter_files()
    files["adapter_model.safetensors"] = b"\0" * (2 * 2 ** 20)  # 2 MB; this Space allows 1 MB
    space.hub.add_model("evil/too-big", files)
    message = chat_error(space, hub="evil/too-big")
    assert t("access.error.adapter_size", "en", source="evil/too-big", mb="2", max="1") in message
    assert not [r for r in space.hub.downloads("adapter_model.safetensors") if "evil/too-big" in r.path]


def test_an_adapter_of_another_base_model_is_refused(space, owner_run):
    space.hub.add_model("evil/other-base", adapter_files(base="Qwen/Qwen2.5-72B-Instruct"))
    message = chat_error(space, hub="evil/other-base")
    assert t("access.error.adapter_base", "en", source="evil/other-base", trained="Qwen/Qwen2.5-72B-Instruct",
             base=demo_model_dir().name) in message


def test_a_failed_load_leaves_the_base_model_exactly_as_it_was(space, owner_run):
    """A config that passes every check, but weights that fail to load after PEFT injected random
    (init_lora_weights=false) layers: the base answers before and after are identical (greedy)."""
    before = chat(space)[0]
    files = adapter_files(config_overrides={"init_lora_weights": False})
    files["adapter_model.safetensors"] = b"not a safetensors file" * 10
    space.hub.add_model("evil/broken", files)
    chat_error(space, hub="evil/broken")
    after = chat(space)[0]
    assert after == before


def test_a_good_hub_adapter_loads_once_however_it_is_spelled(space, owner_run):
    """A valid adapter answers differently from the base; its other spellings reuse the one download."""
    space.hub.add_model("friend/good", adapter_files(seed=7))
    base, tuned = chat(space, hub="friend/good")
    assert tuned != base
    for spelling in ["Friend/Good", "friend/good@main", " friend/good "]:
        assert chat(space, hub=spelling) == (base, tuned)
    assert len([r for r in space.hub.downloads("adapter_model.safetensors") if "/good/" in r.path]) == 1
    assert all(r.authorization is None for r in space.hub.seen() if "good" in r.path)


def test_the_owner_run_is_picked_by_name(space, owner_run):
    base, tuned = chat(space, run="owner-run")
    assert tuned != base and base == chat(space)[0]


def test_answering_modes_take_only_known_arms_and_never_show_a_server_path(space, owner_run):
    """The Chat retrieval switches and the arm choices of Evaluate and Blind A/B reach every visitor
    through the API: arm names are checked on the server, retrieval reads only a listed run's own folder
    (a typed path never becomes one), and the passages listed under an answer name a file, not a folder."""
    from hust_sft.ui.common import SAMPLE_DATA

    base, tuned, _, base_src, tuned_src = space.client.predict(
        "en", QUESTION, "owner-run", "", SYSTEM_PROMPT, [], [], *GEN, True, True, api_name="/chat")
    assert base_src == tuned_src and "`train:" in tuned_src and "(sample_handbook.jsonl:" in tuned_src
    for secret in (str(space.runs_dir), str(SAMPLE_DATA.parent), str(owner_run)):
        assert secret not in base_src + tuned_src + str(base) + str(tuned)
    for value in (str(owner_run), "hust_sft/assets", "../owner-run"):
        with pytest.raises(AppError) as e:
            space.client.predict("en", QUESTION, None, value, SYSTEM_PROMPT, [], [], *GEN, True, True,
                                 api_name="/chat")
        assert t("access.error.adapter_id", "en", value=value) in str(e.value)
    for ref, cand in (("base", "../../etc/passwd"), ("tuned", "tuned"), ("base", "tuned; DROP TABLE pairs")):
        with pytest.raises(AppError):
            space.client.predict(lang_value="en", v=None, q=QUESTION, r="owner-run", h="", ref=ref, cand=cand,
                                 api_name="/arena_new")
    with pytest.raises(AppError):
        space.client.predict("en", "owner-run", "", None, 2, 1, 100, 4, 0, ["base", "../x"], api_name="/evaluate")
    assert not (owner_run / "eval").exists()                 # nothing was evaluated


def test_the_cache_holds_at_most_max_adapters_least_recently_used_first(tmp_path):
    """ModelCache's LRU bound, in-process: a fifth adapter evicts the least recently used one with
    PEFT's delete_adapter (the model then holds four), and an evicted one loads again when asked."""
    from hust_sft.serving import ModelCache

    model = str(demo_model_dir())
    folders = []
    for i in range(5):
        folder = tmp_path / f"a{i}"
        folder.mkdir()
        for name, body in adapter_files(seed=i).items():
            (folder / name).write_bytes(body)
        folders.append(str(folder))
    cache = ModelCache(max_adapters=4)
    for f in folders[:4]:
        cache.get(model, f)
    cache.get(model, folders[0])                      # a0 is now the most recently used
    m, _, _ = cache.get(model, folders[4])            # evicts a1
    assert cache.loaded[1] == [str((tmp_path / n).resolve()) for n in ("a2", "a3", "a0", "a4")]
    assert len(m.peft_config) == 4
    assert set(m.peft_config) == {access_name(p) for p in cache.loaded[1]}
    cache.get(model, folders[1])
    assert cache.loaded[1][-1] == str((tmp_path / "a1").resolve()) and len(m.peft_config) == 4


def access_name(identity: str) -> str:
    from hust_sft.serving import adapter_name

    return adapter_name(identity)
