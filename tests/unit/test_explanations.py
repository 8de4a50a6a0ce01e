"""A card's reason in the viewer's words, from what the ranking recorded."""
import pytest

from feed.explanations import POPULAR_PLAYS, ReactedVideo, about, in_words


def test_a_pick_near_a_watched_video_names_it_and_what_it_is_about():
    watched = ReactedVideo("HIGH_ATTN", "maria", "my cat learns to open doors #cats #funny", "cats")
    assert in_words("ann", "personalized", None, 10, watched) == "Because you watched @maria's video about #cats"
    liked = ReactedVideo("LIKE", "bo", "sunset over the bay from the old pier tonight", None)
    assert in_words("tags", "personalized", None, 10, liked) == (
        "Because you liked @bo's video about “sunset over the bay from the…”")
    assert in_words("ann", "personalized", None, 10, ReactedVideo("FOLLOW_CREATOR", "cy", "", None)) == (
        "Because you follow @cy")
    assert in_words("ann", "personalized", None, 10, ReactedVideo("MID_ATTN", "di", "#fyp", None)) == (
        "Because you watched @di's video")
    assert in_words("ann", "personalized", None, 10, None) == "Picked for what you've been watching"


@pytest.mark.parametrize("source, batch_type, parts, plays, expected", [
    ("explore", "personalized", None, POPULAR_PLAYS, "Exploring something new"),
    ("random", "random", None, POPULAR_PLAYS, "Popular right now"),
    ("topic", "sampled", None, POPULAR_PLAYS - 1, "Exploring something new"),
    ("random", "random", {"liked": 0.1, "explore": 0.4}, POPULAR_PLAYS, "Exploring something new"),
    ("bias", "biased", None, 0, "Picked for the interests you chose"),
    ("sponsored", "personalized", None, 0, "Sponsored"),
])
def test_other_picks_say_why_without_operator_terms(source, batch_type, parts, plays, expected):
    text = in_words(source, batch_type, parts, plays, None)
    assert text == expected
    assert not any(term in text.lower() for term in ("state", "similarity", source if source != "sponsored" else "x"))


def test_about_prefers_a_hashtag_and_keeps_a_short_caption_whole():
    assert about("anything", "dance") == "#dance"
    assert about("two words #tag @someone", None) == "“two words”"
    assert about("#only #tags", None) == ""
