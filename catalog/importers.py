"""Importing the Kaggle "TikTok Trending" collection (and the demo catalog, same format).

Reading is split from writing: ``read_records`` turns a file into raw records (or says clearly
why it cannot), ``parse_record`` turns one raw record into a ``TrendingVideo`` or raises
``RecordError`` with a reason, and ``import_records`` upserts them, one transaction per record
so that one bad record never costs the others. Importing the same file twice updates stats and
creates nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from django.db import DatabaseError, transaction

from .models import Creator, Hashtag, Music, Video


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, not JSON, wrong shape)."""


class RecordError(ValueError):
    """One record cannot be imported: the message says why, ``field`` where (a dotted path into
    the record such as ``authorMeta.id`` or ``hashtags.2``; None when the record itself is wrong)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrendingVideo:
    external_id: str
    caption: str
    created_at: datetime | None
    creator_id: str
    creator_handle: str
    creator_name: str
    creator_bio: str
    creator_verified: bool
    creator_avatar: str
    creator_stats: dict
    music_id: str
    music_name: str
    music_author: str
    music_original: bool
    hashtags: tuple[tuple[str, str], ...]  # (name, external id)
    duration_s: int
    play_count: int
    like_count: int
    share_count: int
    comment_count: int
    web_url: str
    media_url: str
    cover_url: str
    #: The creator's profile fields this record knows, which are the ones its upsert overwrites
    #: (a TikLiveAPI post's ``author{}`` has no bio: importing it must not wipe the one a profile
    #: brought). The trending export knows them all.
    creator_fields: tuple[str, ...] = ("handle", "display_name", "bio", "verified", "avatar_url")

    def creator(self) -> "CreatorRecord":
        return CreatorRecord(self.creator_id, self.creator_handle, self.creator_name, self.creator_bio,
                             self.creator_verified, self.creator_avatar, self.creator_stats, self.creator_fields)


@dataclass(frozen=True)
class CreatorRecord:
    """A creator as a record describes it; ``fields`` (profile) and ``stats``' keys (counts) are
    what the upsert overwrites on an existing row."""

    external_id: str
    handle: str
    display_name: str
    bio: str
    verified: bool
    avatar_url: str
    stats: dict
    fields: tuple[str, ...] = ("handle", "display_name", "bio", "verified", "avatar_url")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)

    @property
    def total(self) -> int:
        return self.created + self.updated + len(self.failed)


def read_records(path: str | Path) -> tuple[list[tuple[str, object]], list[tuple[str, str]]]:
    """Read a catalog file into ``[(where, raw record)]`` plus ``[(where, reason)]`` unreadable.

    ``.jsonl``/``.ndjson`` files hold one record per line (a malformed line is reported with its
    line number, the rest still import); any other file is a JSON object whose ``collector`` key
    lists the records (as the Kaggle export does), or a bare list of records.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc})") from None

    if path.suffix in {".jsonl", ".ndjson"}:
        records, broken = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                broken.append((f"line {number}", f"invalid JSON: {exc.msg} at column {exc.colno}"))
        return records, broken

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict):
        if "collector" not in data or not isinstance(data["collector"], list):
            raise ImportFileError(f"{path}: expected a top-level 'collector' list of videos")
        data = data["collector"]
    if not isinstance(data, list):
        raise ImportFileError(f"{path}: expected a list of videos or an object with a 'collector' list")
    return [(f"record {index}", record) for index, record in enumerate(data)], []


#: Column limits the parser checks, so a value too long or too large for its column is refused
#: with its field named rather than by the database when the record is stored.
ID_LENGTH = Video._meta.get_field("external_id").max_length  # creators', music's and hashtags' too
HANDLE_LENGTH = Creator._meta.get_field("handle").max_length
DISPLAY_NAME_LENGTH = Creator._meta.get_field("display_name").max_length
MUSIC_TEXT_LENGTH = Music._meta.get_field("name").max_length
HASHTAG_LENGTH = Hashtag._meta.get_field("name").max_length
URL_LENGTH = Video._meta.get_field("web_url").max_length
MAX_BIGINT = 2**63 - 1  # counts are bigint columns
MAX_INTEGER = 2**31 - 1  # the duration is an integer column


def _text(record: dict, key: str, prefix: str = "", max_length: int | None = None) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        raise RecordError(f"'{key}' should be text, got {type(value).__name__}", f"{prefix}{key}")
    text = str(value)
    if max_length is not None and len(text) > max_length:
        raise RecordError(f"'{key}' should be at most {max_length} characters, got {len(text)}", f"{prefix}{key}")
    return text


def _count(record: dict, key: str, prefix: str = "", maximum: int = MAX_BIGINT) -> int:
    value = record.get(key, 0)
    if value is None:
        return 0
    # NaN and infinities are JSON to Python's parser, but no count.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        raise RecordError(f"'{key}' should be a non-negative number, got {value!r}", f"{prefix}{key}")
    return int(value)


def _required_id(record: dict, key: str, prefix: str = "", max_length: int = ID_LENGTH) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, (dict, list, bool)):
        raise RecordError(f"missing {prefix}'{key}'", f"{prefix}{key}")
    text = str(value).strip()
    if len(text) > max_length:
        raise RecordError(f"{prefix}'{key}' should be at most {max_length} characters, got {len(text)}",
                          f"{prefix}{key}")
    return text


def _section(record: dict, key: str, required: bool) -> dict:
    value = record.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"'{key}' should be an object" if value is not None else f"missing '{key}'", key)
    return value


def parse_record(record: object) -> TrendingVideo:
    """Validate one raw record of the Kaggle format; raise ``RecordError`` saying what is wrong
    (its ``field`` says where: ``authorMeta.id``, ``createTime``, ``hashtags.2``...)."""
    if not isinstance(record, dict):
        raise RecordError(f"expected an object, got {type(record).__name__}")
    author = _section(record, "authorMeta", required=True)
    music = _section(record, "musicMeta", required=False)
    covers = _section(record, "covers", required=False)
    meta = _section(record, "videoMeta", required=False)

    created = record.get("createTime")
    if created in (None, ""):
        created_at = None
    else:
        try:
            created_at = datetime.fromtimestamp(int(created), tz=timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            raise RecordError(f"'createTime' should be unix seconds, got {created!r}", "createTime") from None

    raw_tags = record.get("hashtags") or []
    if not isinstance(raw_tags, list):
        raise RecordError("'hashtags' should be a list", "hashtags")
    hashtags: dict[str, str] = {}
    for index, tag in enumerate(raw_tags):
        if not isinstance(tag, dict) or not str(tag.get("name") or "").strip():
            raise RecordError(f"hashtag without a name: {tag!r}", f"hashtags.{index}")
        name = _text(tag, "name", f"hashtags.{index}.", HASHTAG_LENGTH).strip().lower()
        hashtags.setdefault(name, _text(tag, "id", f"hashtags.{index}.", ID_LENGTH) if tag.get("id") else "")

    return TrendingVideo(
        external_id=_required_id(record, "id"),
        caption=_text(record, "text"),
        created_at=created_at,
        creator_id=_required_id(author, "id", "authorMeta."),
        creator_handle=_required_id(author, "name", "authorMeta.", HANDLE_LENGTH),
        creator_name=_text(author, "nickName", "authorMeta.", DISPLAY_NAME_LENGTH),
        creator_bio=_text(author, "signature", "authorMeta."),
        creator_verified=bool(author.get("verified", False)),
        creator_avatar=_text(author, "avatar", "authorMeta.", URL_LENGTH),
        creator_stats={
            name: _count(author, key, "authorMeta.")
            for name, key in [
                ("follower_count", "fans"),
                ("following_count", "following"),
                ("heart_count", "heart"),
                ("video_count", "video"),
            ]
            if key in author
        },
        music_id=_text(music, "musicId", "musicMeta.", ID_LENGTH),
        music_name=_text(music, "musicName", "musicMeta.", MUSIC_TEXT_LENGTH),
        music_author=_text(music, "musicAuthor", "musicMeta.", MUSIC_TEXT_LENGTH),
        music_original=bool(music.get("musicOriginal", False)),
        hashtags=tuple(hashtags.items()),
        duration_s=_count(meta, "duration", "videoMeta.", MAX_INTEGER),
        play_count=_count(record, "playCount"),
        like_count=_count(record, "diggCount"),
        share_count=_count(record, "shareCount"),
        comment_count=_count(record, "commentCount"),
        web_url=_text(record, "webVideoUrl", "", URL_LENGTH),
        media_url=_text(record, "videoUrl", "", URL_LENGTH),
        cover_url=_text(covers, "default", "covers.", URL_LENGTH),
    )


VIDEO_FIELDS = [
    "creator", "caption", "music", "created_at", "duration_s", "play_count", "like_count",
    "share_count", "comment_count", "web_url", "media_url", "cover_url",
]


def _music_key(item: TrendingVideo) -> str:
    """Music without an id (rare) is keyed by its name and author (by their digest when that key
    would not fit the column)."""
    key = item.music_id or f"name:{item.music_name}:{item.music_author}"
    if len(key) <= ID_LENGTH:
        return key
    return "name-sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[: ID_LENGTH - len("name-sha256:")]


def save_creators(records: list[CreatorRecord]) -> dict[str, int]:
    """Upsert creators (the last record of an external id wins); returns ``{external id: pk}``.

    The one creator upsert of every importer. An existing row keeps what a record does not know:
    only the record's ``fields`` and its ``stats``' keys are overwritten (the 2020 trending export
    has no counts; a TikLiveAPI post's author has no bio).
    """
    creators = {record.external_id: record for record in records}
    creator_pks: dict[str, int] = {}
    group_key = lambda r: (tuple(r.fields), tuple(sorted(r.stats)))  # noqa: E731
    for fields, stats_keys in {group_key(r) for r in creators.values()}:
        group = [r for r in creators.values() if group_key(r) == (fields, stats_keys)]
        rows = Creator.objects.bulk_create(
            [
                Creator(
                    external_id=r.external_id, handle=r.handle, display_name=r.display_name, bio=r.bio,
                    verified=r.verified, avatar_url=r.avatar_url, **r.stats,
                )
                for r in group
            ],
            # "handle" always: an upsert with nothing to update would return no primary keys.
            update_conflicts=True, unique_fields=["external_id"],
            update_fields=list(dict.fromkeys(["handle", *fields, *stats_keys])),
        )
        creator_pks.update((row.external_id, row.pk) for row in rows)
    return creator_pks


def _save_chunk(items: list[TrendingVideo]) -> int:
    """Upsert many parsed videos in a few statements; returns how many videos were created.

    The fast path of the import. Rows are de-duplicated by external id first (the last record
    wins), since one INSERT ... ON CONFLICT cannot touch the same row twice.
    """
    items = list({item.external_id: item for item in items}.values())
    existing = set(Video.objects.filter(external_id__in=[i.external_id for i in items]).values_list("external_id", flat=True))

    creator_pks = save_creators([item.creator() for item in items])

    music_rows = {}
    for item in items:
        if item.music_id or item.music_name:
            music_rows[_music_key(item)] = Music(
                external_id=_music_key(item), name=item.music_name, author=item.music_author, original=item.music_original
            )
    music_pks = {
        row.external_id: row.pk
        for row in Music.objects.bulk_create(
            list(music_rows.values()), update_conflicts=True, unique_fields=["external_id"],
            update_fields=["name", "author", "original"],
        )
    }

    tag_ids = {name: ext for item in items for name, ext in item.hashtags}
    Hashtag.objects.bulk_create(
        [Hashtag(name=name, external_id=ext) for name, ext in tag_ids.items()], ignore_conflicts=True
    )
    tag_pks = dict(Hashtag.objects.filter(name__in=list(tag_ids)).values_list("name", "pk"))

    videos = Video.objects.bulk_create(
        [
            Video(
                external_id=i.external_id, creator_id=creator_pks[i.creator_id], caption=i.caption,
                music_id=music_pks.get(_music_key(i)), created_at=i.created_at, duration_s=i.duration_s,
                play_count=i.play_count, like_count=i.like_count, share_count=i.share_count,
                comment_count=i.comment_count, web_url=i.web_url, media_url=i.media_url, cover_url=i.cover_url,
            )
            for i in items
        ],
        update_conflicts=True, unique_fields=["external_id"], update_fields=VIDEO_FIELDS,
    )
    Through = Video.hashtags.through
    Through.objects.filter(video_id__in=[v.pk for v in videos]).delete()
    Through.objects.bulk_create(
        [
            Through(video_id=video.pk, hashtag_id=tag_pks[name])
            for video, item in zip(videos, items)
            for name, _ in item.hashtags
        ]
    )
    return sum(1 for item in items if item.external_id not in existing)


def import_records(records: list[tuple[str, object]], progress=None, chunk_size: int = 250,
                   parse=parse_record) -> ImportReport:
    """Upsert ``[(where, raw record)]``, reporting each record that cannot be imported.

    ``parse`` turns a raw record into a ``TrendingVideo`` (or raises ``RecordError``): the
    trending format's by default; ``catalog.tikliveapi`` passes the TikLiveAPI post's, so both
    formats share this one upsert.

    Records are written a chunk at a time in one transaction; if the database refuses a chunk,
    that chunk is retried record by record so only the offending records fail.
    """
    report = ImportReport()
    for start in range(0, len(records), chunk_size):
        parsed = []
        for where, record in records[start : start + chunk_size]:
            try:
                parsed.append((where, parse(record)))
            except RecordError as exc:
                report.failed.append((where, str(exc)))
        try:
            with transaction.atomic():
                created = _save_chunk([item for _, item in parsed])
            report.created += created
            report.updated += len(parsed) - created
        except DatabaseError:
            for where, item in parsed:
                try:
                    with transaction.atomic():
                        created = _save_chunk([item])
                except DatabaseError as exc:
                    report.failed.append((where, f"database refused it: {str(exc).strip().splitlines()[0]}"))
                else:
                    report.created += created
                    report.updated += 1 - created
        if progress:
            progress(len(records[start : start + chunk_size]))
    return report
