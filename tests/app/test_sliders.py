"""Sliders page: posterior mean → sliders → live decoded sentence, escaping, OOV warning, shareable links."""

from __future__ import annotations

PAGE = "app_pages/sliders.py"


def _decoded_block(at) -> str:
    """The markdown body of the decoded-sentence box."""
    blocks = [m.value for m in at.markdown if 'class="vae-sentence"' in m.value]
    assert blocks, "no decoded sentence shown"
    return blocks[0]


def _z_sliders(at):
    return [s for s in at.slider if str(s.key).startswith("w_z_")]


def test_sliders_render_one_slider_per_dimension(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    assert len(_z_sliders(at)) == 4
    assert all("KL" in s.label for s in _z_sliders(at))
    assert at.text_input(key="w_sliders_text").value  # the first test sentence is preselected
    assert at.query_params.get("s") == at.text_input(key="w_sliders_text").value


def test_moving_sliders_changes_the_decoded_sentence(open_app, assert_page_ok):
    at = open_app(PAGE)
    before = _decoded_block(at)
    assert "<mark>" not in before  # untouched sliders decode the reconstruction itself
    for value in (4.0, -4.0):
        for s in _z_sliders(at):
            s.set_value(value)
        at.run()
        assert_page_ok(at)
        if _decoded_block(at) != before:
            break
    after = _decoded_block(at)
    assert after != before
    assert "<mark>" in after  # changed words are marked
    assert at.query_params["z"].count(",") == 3
    # Reset brings back the reconstruction.
    next(b for b in at.button if "Reset" in b.label).click().run()
    assert _decoded_block(at) == before


def test_typed_html_is_displayed_literally(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.text_input(key="w_sliders_text").input("the doctor <b>bold</b> <script>alert(1)</script>").run()
    assert_page_ok(at)
    bodies = [m.value for m in at.markdown] + [w.value for w in at.warning]
    joined = "\n".join(bodies)
    assert "&lt;script&gt;" in joined and "&lt;b&gt;" in joined
    assert "<script" not in joined.lower()
    assert "<b>" not in joined


def test_out_of_vocabulary_words_are_flagged(open_app):
    at = open_app(PAGE)
    at.text_input(key="w_sliders_text").input("the doctor sees the purple giraffe .").run()
    assert at.warning, "OOV words must be flagged"
    text = at.warning[0].value
    assert "purple" in text and "giraffe" in text


def test_empty_input_shows_a_message(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.text_input(key="w_sliders_text").input("   ").run()
    assert_page_ok(at)
    assert any("Type a sentence" in i.value for i in at.info)
    assert not _z_sliders(at)


def test_query_params_reopen_the_same_view(open_app, assert_page_ok):
    sentence = "the pilots will not follow the red horse ."
    at = open_app(PAGE, query={"s": sentence, "z": "1.5,-2,0.25,garbage"})  # a bad z is ignored
    assert_page_ok(at)
    assert at.text_input(key="w_sliders_text").value == sentence
    at2 = open_app(PAGE, query={"s": sentence, "z": "1.5,-2,0.25,3"})
    values = {s.key: s.value for s in _z_sliders(at2)}
    assert values == {"w_z_0": 1.5, "w_z_1": -2.0, "w_z_2": 0.25, "w_z_3": 3.0}
    assert at2.query_params["z"] == "1.50,-2.00,0.25,3.00"


def test_picking_a_corpus_sentence_fills_the_box(open_app):
    at = open_app(PAGE)
    pick = at.selectbox(key="w_sliders_pick")
    choice = pick.options[2]
    pick.set_value(choice).run()
    assert at.text_input(key="w_sliders_text").value == choice
    assert any(c.value.startswith("Factors:") for c in at.caption)  # the built-in corpus: factors shown


def test_odd_input_gives_a_message_or_a_result_never_an_exception(open_app, assert_page_ok):
    at = open_app(PAGE)
    for text in (
        "😀 🚀 ✨",  # only emoji: every token unknown
        "наука 科学 العلوم",  # other scripts
        "the\x00 doctor\x07 sees",  # control characters
        "word " * 2000,  # far longer than a sentence (the box caps it at 500 characters)
        "zzz qqq xxx",  # only unknown words
    ):
        at.text_input(key="w_sliders_text").input(text[:500]).run()
        assert_page_ok(at)
        assert _z_sliders(at) or at.info, repr(text[:20])
    long_link = open_app(PAGE, query={"s": "the doctor " * 400})
    assert_page_ok(long_link)
    assert len(long_link.text_input(key="w_sliders_text").value) <= 500


def test_link_button_puts_the_slider_values_in_the_address(open_app, assert_page_ok):
    at = open_app(PAGE)
    for s in _z_sliders(at):
        s.set_value(1.25)
    next(b for b in at.button if b.label == "Link to this view").click().run()
    assert_page_ok(at)
    assert at.query_params["z"] == ",".join(["1.25"] * len(_z_sliders(at)))
