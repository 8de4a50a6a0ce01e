"""Importing TikLiveAPI responses: profiles, posts and comments, saved as JSON files.

Three endpoints, three shapes, and two key styles that must not be mixed up:

- ``/userinfo-by-username/``: ``{"user": {...}, "stats": {...}}``, camelCase (``uniqueId``,
  ``followerCount``); becomes a ``Creator`` (profile and counts).
- ``/user-posts/``: ``{"videos": [...]}``, newest first, each video flat snake_case (``video_id``,
  ``create_time``, ``play_count``) with nested ``music_info{}`` and ``author{}``; each becomes a
  ``Video`` through ``importers.import_records`` -- the trending importer's upsert, not a second
  one (``parse_post`` yields the same ``TrendingVideo``).
- ``/post-comments/``: ``{"comments": [...]}``, each ``{id, video_id, text, digg_count,
  reply_total, create_time, user{}}``; becomes a ``Comment`` of an imported video.

A response may come wrapped as the service sends it (``{"code": 0, "data": {...}}``). A payload
of another shape is refused whole (``ShapeError``, saying which shape was expected and what it
looks like instead); a record that cannot be imported is reported by index and field
(``importers.RecordError``), and the others still import.

A directory of saved responses holds one folder per endpoint (``userinfo-by-username/``,
``user-posts/``, ``post-comments/``) of ``*.json`` files, as ``catalog.tikliveapi_client``
writes them; a file may instead sit at the top with its name starting with the endpoint's.
``import_directory`` imports profiles, then posts, then comments (a comment needs its video).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from django.db import DatabaseError, transaction

from .importers import (
    DISPLAY_NAME_LENGTH, HANDLE_LENGTH, HASHTAG_LENGTH, ID_LENGTH, MAX_INTEGER, MUSIC_TEXT_LENGTH, URL_LENGTH,
    CreatorRecord, ImportFileError, RecordError, TrendingVideo, _count, _required_id, _text, import_records,
    save_creators,
)
from .models import Comment, Creator, Video

USERINFO = "userinfo-by-username"
POSTS = "user-posts"
COMMENTS = "post-comments"
#: In import order: a post needs no profile, but a comment needs its post.
ENDPOINTS = (USERINFO, POSTS, COMMENTS)

#: What each endpoint's payload holds, as an error message says it.
SHAPES = {
    USERINFO: "an object with 'user' and 'stats' objects (camelCase keys: uniqueId, followerCount)",
    POSTS: "an object with a 'videos' list (snake_case keys: video_id, create_time, music_info)",
    COMMENTS: "an object with a 'comments' list (id, video_id, text, digg_count, reply_total, user)",
}
#: The top-level key that tells each shape apart.
_MARKERS = {USERINFO: "user", POSTS: "videos", COMMENTS: "comments"}

#: Keys of the camelCase style (profiles, the trending export) that a snake_case record must not
#: carry, and the reverse: either one found means the payload's style was mixed up.
_CAMEL_IN_SNAKE = ("videoId", "createTime", "playCount", "diggCount", "commentCount", "shareCount",
                   "musicInfo", "musicMeta", "authorMeta", "uniqueId", "replyTotal", "videoMeta")
_SNAKE_IN_CAMEL = ("unique_id", "follower_count", "following_count", "heart_count", "video_count",
                   "avatar_larger", "avatar_thumb")

_HASHTAG = re.compile(r"#(\w+)", re.UNICODE)
COMMENT_AUTHOR_LENGTH = Comment._meta.get_field("author_handle").max_length


class ShapeError(ImportFileError):
    """A payload is not the shape of the endpoint it was saved (or fetched) as."""


def unwrap(payload: object, endpoint: str) -> dict:
    """The response body of ``endpoint`` without the service's envelope, or ``ShapeError``."""
    if isinstance(payload, dict) and "data" in payload and _MARKERS[endpoint] not in payload:
        if payload.get("code") not in (None, 0, "0"):
            raise ShapeError(f"the service answered code {payload.get('code')!r}: {payload.get('msg', '')}".strip())
        payload = payload["data"]
    if isinstance(payload, dict) and USERINFO == endpoint and "userInfo" in payload and "user" not in payload:
        payload = payload["userInfo"]
    expected = f"expected the /{endpoint}/ shape: {SHAPES[endpoint]}"
    if not isinstance(payload, dict):
        raise ShapeError(f"{expected}; got {type(payload).__name__}")
    if _MARKERS[endpoint] not in payload:
        looks_like = [other for other, marker in _MARKERS.items() if other != endpoint and marker in payload]
        hint = f"; this looks like a /{looks_like[0]}/ response" if looks_like else f"; got keys {sorted(payload)[:8]}"
        raise ShapeError(expected + hint)
    return payload


def _refuse_keys(record: dict, keys: tuple[str, ...], prefix: str, style: str, expected: str) -> None:
    for key in keys:
        if key in record:
            raise RecordError(f"{prefix}'{key}' is {style}: expected the {expected} style here", f"{prefix}{key}")


def _timestamp(record: dict, key: str, prefix: str = "") -> datetime | None:
    value = record.get(key)
    if value in (None, ""):
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise RecordError(f"{prefix}'{key}' should be unix seconds, got {value!r}", f"{prefix}{key}") from None


def _object(record: dict, key: str, prefix: str = "", required: bool = False) -> dict:
    value = record.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{prefix}'{key}' should be an object" if value is not None else f"missing {prefix}'{key}'",
                          f"{prefix}{key}")
    return value


# --- /userinfo-by-username/ ---------------------------------------------------------------------

def parse_profile(payload: object) -> CreatorRecord:
    """The creator of a ``/userinfo-by-username/`` body (``ShapeError`` for another shape,
    ``RecordError`` naming the field for a bad value)."""
    body = unwrap(payload, USERINFO)
    user = _object(body, "user", required=True)
    stats = _object(body, "stats", required=True)
    _refuse_keys(user, _SNAKE_IN_CAMEL, "user.", "snake_case", "camelCase /userinfo-by-username/")
    _refuse_keys(stats, _SNAKE_IN_CAMEL, "stats.", "snake_case", "camelCase /userinfo-by-username/")
    avatar_key = next((k for k in ("avatarLarger", "avatarMedium", "avatarThumb") if user.get(k)), "avatarLarger")
    return CreatorRecord(
        external_id=_required_id(user, "id", "user."),
        handle=_required_id(user, "uniqueId", "user.", HANDLE_LENGTH),
        display_name=_text(user, "nickname", "user.", DISPLAY_NAME_LENGTH),
        bio=_text(user, "signature", "user."),
        verified=bool(user.get("verified", False)),
        avatar_url=_text(user, avatar_key, "user.", URL_LENGTH),
        stats={name: _count(stats, key, "stats.") for name, key in [
            ("follower_count", "followerCount"), ("following_count", "followingCount"),
            ("heart_count", "heartCount"), ("video_count", "videoCount")] if key in stats},
    )


# --- /user-posts/ -------------------------------------------------------------------------------

def parse_post(record: object) -> TrendingVideo:
    """One video of a ``/user-posts/`` body as the shared upsert takes it; ``RecordError`` with
    the field (``music_info.id``, ``author.unique_id``, ``create_time``...) when it cannot be."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a video object, got {type(record).__name__}")
    _refuse_keys(record, _CAMEL_IN_SNAKE, "", "camelCase", "snake_case /user-posts/")
    music = _object(record, "music_info")
    author = _object(record, "author", required=True)
    _refuse_keys(music, _CAMEL_IN_SNAKE, "music_info.", "camelCase", "snake_case /user-posts/")
    _refuse_keys(author, _CAMEL_IN_SNAKE, "author.", "camelCase", "snake_case /user-posts/")
    id_key = "video_id" if "video_id" in record or "aweme_id" not in record else "aweme_id"
    external_id = _required_id(record, id_key)
    caption = _text(record, "title")
    handle = _required_id(author, "unique_id", "author.", HANDLE_LENGTH)
    hashtags = {}
    for index, name in enumerate(_HASHTAG.findall(caption)):
        name = name.lower()
        if len(name) > HASHTAG_LENGTH:
            raise RecordError(f"hashtag {index} of 'title' is longer than {HASHTAG_LENGTH} characters", "title")
        hashtags.setdefault(name, "")
    return TrendingVideo(
        external_id=external_id,
        caption=caption,
        created_at=_timestamp(record, "create_time"),
        creator_id=_required_id(author, "id", "author."),
        creator_handle=handle,
        creator_name=_text(author, "nickname", "author.", DISPLAY_NAME_LENGTH),
        creator_bio="",
        creator_verified=False,
        creator_avatar=_text(author, "avatar", "author.", URL_LENGTH),
        creator_stats={},
        music_id=_text(music, "id", "music_info.", ID_LENGTH),
        music_name=_text(music, "title", "music_info.", MUSIC_TEXT_LENGTH),
        music_author=_text(music, "author", "music_info.", MUSIC_TEXT_LENGTH),
        music_original=bool(music.get("original", False)),
        hashtags=tuple(hashtags.items()),
        duration_s=_count(record, "duration", "", MAX_INTEGER),
        play_count=_count(record, "play_count"),
        like_count=_count(record, "digg_count"),
        share_count=_count(record, "share_count"),
        comment_count=_count(record, "comment_count"),
        web_url=f"https://www.tiktok.com/@{handle}/video/{external_id}"[:URL_LENGTH],
        media_url=_text(record, "play", "", URL_LENGTH),
        cover_url=_text(record, "cover", "", URL_LENGTH),
        # A post's author carries no bio nor badge: leave the profile's.
        creator_fields=("handle", "display_name", "avatar_url"),
    )


def posts_of(payload: object) -> list:
    videos = unwrap(payload, POSTS)["videos"]
    if not isinstance(videos, list):
        raise ShapeError(f"expected the /{POSTS}/ shape: 'videos' should be a list, got {type(videos).__name__}")
    return videos


# --- /post-comments/ ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CommentRecord:
    external_id: str
    video_external_id: str
    text: str
    like_count: int
    reply_count: int
    created_at: datetime | None
    author_external_id: str
    author_handle: str


def parse_comment(record: object) -> CommentRecord:
    """One comment of a ``/post-comments/`` body; ``RecordError`` with the field when bad."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a comment object, got {type(record).__name__}")
    _refuse_keys(record, _CAMEL_IN_SNAKE, "", "camelCase", "snake_case /post-comments/")
    user = _object(record, "user", required=True)
    _refuse_keys(user, _CAMEL_IN_SNAKE, "user.", "camelCase", "snake_case /post-comments/")
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError("'text' should be text" if text is not None else "missing 'text'", "text")
    return CommentRecord(
        external_id=_required_id(record, "id"),
        video_external_id=_required_id(record, "video_id"),
        text=text,
        like_count=_count(record, "digg_count"),
        reply_count=_count(record, "reply_total"),
        created_at=_timestamp(record, "create_time"),
        author_external_id=_text(user, "id", "user.", ID_LENGTH),
        author_handle=_required_id(user, "unique_id", "user.", COMMENT_AUTHOR_LENGTH),
    )


def comments_of(payload: object) -> list:
    comments = unwrap(payload, COMMENTS)["comments"]
    if not isinstance(comments, list):
        raise ShapeError(f"expected the /{COMMENTS}/ shape: 'comments' should be a list, got {type(comments).__name__}")
    return comments


def save_comments(items: list[CommentRecord]) -> tuple[int, list[tuple[CommentRecord, str]]]:
    """Upsert comments of videos already imported; returns (created, [(comment, why not)])."""
    items = list({item.external_id: item for item in items}.values())
    videos = dict(Video.objects.filter(external_id__in={i.video_external_id for i in items})
                  .values_list("external_id", "pk"))
    refused = [(i, f"no video {i.video_external_id!r} is imported (import its /{POSTS}/ first)")
               for i in items if i.video_external_id not in videos]
    items = [i for i in items if i.video_external_id in videos]
    existing = set(Comment.objects.filter(external_id__in=[i.external_id for i in items])
                   .values_list("external_id", flat=True))
    Comment.objects.bulk_create(
        [Comment(external_id=i.external_id, video_id=videos[i.video_external_id], text=i.text,
                 like_count=i.like_count, reply_count=i.reply_count, created_at=i.created_at,
                 author_external_id=i.author_external_id, author_handle=i.author_handle) for i in items],
        update_conflicts=True, unique_fields=["external_id"],
        update_fields=["video", "text", "like_count", "reply_count", "created_at", "author_external_id",
                       "author_handle"],
    )
    return sum(1 for i in items if i.external_id not in existing), refused


# --- a directory of saved responses -------------------------------------------------------------

@dataclass
class Failure:
    """Why something was not imported: a whole file (``index`` None) or one record of it."""

    file: str
    index: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.index is None else f"{self.file}: record {self.index}"
        return f"{where}: {self.message}"


@dataclass
class DirectoryReport:
    #: ``{endpoint: {"created": n, "updated": n}}``
    counts: dict = field(default_factory=lambda: {e: {"created": 0, "updated": 0} for e in ENDPOINTS})
    failed: list[Failure] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(c["created"] for c in self.counts.values())


def endpoint_of(path: Path, root: Path) -> str | None:
    """The endpoint a saved file answers: its folder under ``root``, or its name's start."""
    relative = path.relative_to(root)
    for endpoint in ENDPOINTS:
        if relative.parts[0] == endpoint or relative.name.startswith(endpoint):
            return endpoint
    return None


def saved_files(root: Path) -> tuple[dict[str, list[Path]], list[Failure]]:
    """``{endpoint: [files]}`` (sorted) under ``root``, and the JSON files that answer none
    (hidden ones, such as the fetcher's state file, are not responses)."""
    if not root.is_dir():
        raise ImportFileError(f"{root}: no such directory")
    found: dict[str, list[Path]] = {endpoint: [] for endpoint in ENDPOINTS}
    unknown = []
    for path in sorted(root.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # the fetcher's state file, editors' and tools' hidden files
        endpoint = endpoint_of(path, root)
        if endpoint is None:
            unknown.append(Failure(str(path.relative_to(root)), None, None,
                                   f"answers no known endpoint: put it under {', '.join(e + '/' for e in ENDPOINTS)}"))
        else:
            found[endpoint].append(path)
    return found, unknown


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def import_payload(endpoint: str, payload: object, name: str, report: DirectoryReport) -> None:
    """Import one response of ``endpoint`` into ``report`` (``ShapeError`` for a wrong shape)."""
    counts = report.counts[endpoint]
    if endpoint == USERINFO:
        try:
            creator = parse_profile(payload)
        except RecordError as exc:
            report.failed.append(Failure(name, None, exc.field, str(exc)))
            return
        existed = Creator.objects.filter(external_id=creator.external_id).exists()
        with transaction.atomic():
            save_creators([creator])
        counts["updated" if existed else "created"] += 1
    elif endpoint == POSTS:
        records = [(f"record {i}", r) for i, r in enumerate(posts_of(payload))]
        result = import_records(records, parse=parse_post)
        counts["created"] += result.created
        counts["updated"] += result.updated
        by_where = {where: i for i, (where, _) in enumerate(records)}
        for where, reason in result.failed:
            index = by_where.get(where)
            report.failed.append(Failure(name, index, _field_of(parse_post, records[index][1]) if index is not None else None,
                                         reason))
    else:
        parsed = []
        for index, record in enumerate(comments_of(payload)):
            try:
                parsed.append((index, parse_comment(record)))
            except RecordError as exc:
                report.failed.append(Failure(name, index, exc.field, str(exc)))
        try:
            with transaction.atomic():
                created, refused = save_comments([c for _, c in parsed])
        except DatabaseError as exc:
            report.failed.append(Failure(name, None, None, f"database refused it: {str(exc).strip().splitlines()[0]}"))
            return
        index_of = {c.external_id: i for i, c in parsed}
        for comment, reason in refused:
            report.failed.append(Failure(name, index_of[comment.external_id], "video_id", reason))
        counts["created"] += created
        counts["updated"] += len(parsed) - len(refused) - created


def _field_of(parse, record) -> str | None:
    try:
        parse(record)
    except RecordError as exc:
        return exc.field
    return None


def import_directory(root: str | Path, progress=None) -> DirectoryReport:
    """Import every saved response under ``root``: profiles, then posts, then comments."""
    root = Path(root)
    files, unknown = saved_files(root)
    report = DirectoryReport(failed=list(unknown))
    for endpoint in ENDPOINTS:
        for path in files[endpoint]:
            name = str(path.relative_to(root))
            try:
                import_payload(endpoint, _load(path), name, report)
            except ImportFileError as exc:  # ShapeError too: the whole file is refused
                report.failed.append(Failure(name, None, None, str(exc)))
            if progress:
                progress(1)
    return report
