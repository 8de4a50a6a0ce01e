"""The three TikLiveAPI shapes, parsed without a database: each one's fields land where they
belong, and a payload or record in the other key style is refused saying what was expected."""
import json
from pathlib import Path

import pytest

from catalog.importers import RecordError
from catalog.tikliveapi import (
    COMMENTS, POSTS, USERINFO, ShapeError, comments_of, endpoint_of, parse_comment, parse_post, parse_profile,
    posts_of,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tikliveapi"


def load(relative):
    return json.loads((FIXTURES / relative).read_text())


def test_profile_reads_the_camelcase_user_and_stats():
    creator = parse_profile(load("userinfo-by-username/chef_ana.json"))  # wrapped in {"code", "data"}

    assert (creator.external_id, creator.handle, creator.display_name) == ("6800000000000000001", "chef_ana", "Ana Cooks")
    assert creator.bio.startswith("Home cooking") and creator.verified
    assert creator.avatar_url == "https://p16.example.com/ana.jpeg"
    assert creator.stats == {"follower_count": 120000, "following_count": 80, "heart_count": 2400000, "video_count": 3}


def test_unwrapped_profile_falls_back_to_the_smaller_avatar():
    creator = parse_profile(load("userinfo-by-username/goal_gus.json"))
    assert creator.avatar_url == "https://p16.example.com/gus.jpeg" and not creator.verified


def test_post_reads_the_flat_snake_case_video_and_its_music_info():
    videos = posts_of(load("user-posts/chef_ana.0.json"))
    video = parse_post(videos[0])

    assert video.external_id == "7300000000000000003"  # video_id, not aweme_id
    assert video.caption.startswith("Fresh pasta")
    assert video.created_at.timestamp() == 1700000300
    assert (video.play_count, video.like_count, video.comment_count, video.share_count) == (90000, 8100, 3, 410)
    assert (video.music_id, video.music_name, video.music_author, video.music_original) == (
        "7200000000000000001", "original sound - chef_ana", "Ana Cooks", True)
    assert dict(video.hashtags) == {"pasta": "", "cooking": ""}
    assert video.creator_id == "6800000000000000001" and video.creator_handle == "chef_ana"
    assert "bio" not in video.creator_fields  # a post's author must not wipe the profile's bio
    assert video.web_url == "https://www.tiktok.com/@chef_ana/video/7300000000000000003"
    # Newest first, as the endpoint lists them.
    assert [parse_post(v).created_at for v in videos] == sorted((parse_post(v).created_at for v in videos), reverse=True)


def test_comment_reads_id_video_text_counts_and_user():
    comment = parse_comment(comments_of(load("post-comments/7300000000000000003.0.json"))[0])

    assert (comment.external_id, comment.video_external_id) == ("7400000000000000001", "7300000000000000003")
    assert comment.text.startswith("I made this pasta")
    assert (comment.like_count, comment.reply_count) == (12, 1)
    assert (comment.author_handle, comment.author_external_id) == ("viewer_vic", "6900000000000000001")


@pytest.mark.parametrize("endpoint, payload_file, looks_like", [
    (USERINFO, "user-posts/chef_ana.0.json", POSTS),
    (POSTS, "userinfo-by-username/goal_gus.json", USERINFO),
    (COMMENTS, "user-posts/goal_gus.0.json", POSTS),
    (POSTS, "post-comments/7300000000000000002.0.json", COMMENTS),
])
def test_a_payload_of_another_shape_is_refused_naming_the_expected_one(endpoint, payload_file, looks_like):
    parse = {USERINFO: parse_profile, POSTS: posts_of, COMMENTS: comments_of}[endpoint]
    with pytest.raises(ShapeError) as caught:
        parse(load(payload_file))
    assert f"expected the /{endpoint}/ shape" in str(caught.value)
    assert f"looks like a /{looks_like}/ response" in str(caught.value)


def test_a_payload_that_is_no_object_is_refused():
    with pytest.raises(ShapeError, match=r"expected the /user-posts/ shape.*got list"):
        posts_of([{"video_id": "1"}])


def test_a_camelcase_post_is_refused_with_the_field_that_gives_it_away():
    record = dict(posts_of(load("user-posts/goal_gus.0.json"))[0])
    record["playCount"] = record.pop("play_count")
    with pytest.raises(RecordError) as caught:
        parse_post(record)
    assert caught.value.field == "playCount" and "snake_case /user-posts/" in str(caught.value)


def test_a_snake_case_profile_is_refused_with_the_field():
    payload = load("userinfo-by-username/goal_gus.json")
    payload["user"]["unique_id"] = payload["user"].pop("uniqueId")
    with pytest.raises(RecordError) as caught:
        parse_profile(payload)
    assert caught.value.field == "user.unique_id" and "camelCase" in str(caught.value)


@pytest.mark.parametrize("change, field", [
    (lambda r: r["author"].pop("id"), "author.id"),
    (lambda r: r.update(create_time="yesterday"), "create_time"),
    (lambda r: r.update(music_info=["not", "an object"]), "music_info"),
    (lambda r: r.update(digg_count=-1), "digg_count"),
    (lambda r: r.pop("author"), "author"),
])
def test_a_bad_post_names_its_field(change, field):
    record = json.loads(json.dumps(posts_of(load("user-posts/goal_gus.0.json"))[0]))
    change(record)
    with pytest.raises(RecordError) as caught:
        parse_post(record)
    assert caught.value.field == field


def test_a_comment_without_text_or_user_names_the_field():
    record = comments_of(load("post-comments/7300000000000000012.0.json"))[0]
    with pytest.raises(RecordError) as caught:
        parse_comment({k: v for k, v in record.items() if k != "text"})
    assert caught.value.field == "text"
    with pytest.raises(RecordError) as caught:
        parse_comment({**record, "user": {"id": "1"}})
    assert caught.value.field == "user.unique_id"


def test_saved_files_are_matched_to_endpoints_by_folder_or_name(tmp_path):
    assert endpoint_of(tmp_path / "user-posts" / "x.0.json", tmp_path) == POSTS
    assert endpoint_of(tmp_path / "post-comments-123.json", tmp_path) == COMMENTS
    assert endpoint_of(tmp_path / "notes" / "x.json", tmp_path) is None
