import json

import pytest
from django.core.management import CommandError, call_command

from catalog.importers import import_records, read_records
from catalog.models import Creator, Hashtag, Music, Video
from tests.conftest import DEMO


def test_real_catalog_is_imported_with_its_creators(catalog_db):
    assert Video.objects.count() == 1000
    assert Creator.objects.count() == 802
    video = Video.objects.select_related("creator", "music").get(external_id="6907228749016714497")
    assert video.creator.handle == "ninakleij"
    assert video.caption == "Confidence went 📈"
    assert video.music.name == "Element" and video.music.author == "Pop Smoke"
    assert video.duration_s == 15 and video.play_count == 44800 and video.like_count == 3710


def test_reimport_creates_nothing_and_updates_stats(catalog_db, trending_path, capsys):
    Video.objects.filter(external_id="6907228749016714497").update(play_count=1)
    counts = (Video.objects.count(), Creator.objects.count(), Music.objects.count(), Hashtag.objects.count(),
              Video.hashtags.through.objects.count())

    call_command("import_trending", str(trending_path))

    assert "0 created, 1000 updated, 0 failed" in capsys.readouterr().out
    assert counts == (Video.objects.count(), Creator.objects.count(), Music.objects.count(), Hashtag.objects.count(),
                      Video.hashtags.through.objects.count())
    assert Video.objects.get(external_id="6907228749016714497").play_count == 44800


def test_broken_record_is_reported_and_the_rest_import(db, tmp_path, trending_path, capsys):
    records = json.loads(trending_path.read_text())["collector"][:3]
    broken = dict(records[1], authorMeta={"nickName": "no id"})
    new = [dict(r, id=f"900{i}") for i, r in enumerate([records[0], broken, records[2]])]
    path = tmp_path / "three.json"
    path.write_text(json.dumps({"collector": new}))

    with pytest.raises(CommandError, match="2 created, 0 updated, 1 failed"):
        call_command("import_trending", str(path))

    assert "record 1: missing authorMeta.'id'" in capsys.readouterr().err
    assert set(Video.objects.filter(external_id__startswith="900").values_list("external_id", flat=True)) == {"9000", "9002"}


def test_malformed_json_line_is_reported_with_its_line_number(db, tmp_path, trending_path):
    record = json.loads(trending_path.read_text())["collector"][0]
    lines = [json.dumps(dict(record, id="7001")), "{not json", json.dumps(dict(record, id="7003"))]
    path = tmp_path / "videos.jsonl"
    path.write_text("\n".join(lines))

    records, unreadable = read_records(path)
    report = import_records(records)

    assert [where for where, _ in unreadable] == ["line 2"]
    assert "invalid JSON" in unreadable[0][1]
    assert report.created == 2
    assert Video.objects.filter(external_id__in=["7001", "7003"]).count() == 2


def test_bad_values_name_the_field(db):
    report = import_records([("record 0", {"id": "1", "authorMeta": {"id": "2", "name": "x"}, "playCount": -5})])
    assert report.failed == [("record 0", "'playCount' should be a non-negative number, got -5")]


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), ("{oops", "invalid JSON"), ('{"videos": []}', "expected a top-level 'collector' list")],
)
def test_unreadable_file_gives_one_clear_error(db, tmp_path, content, message):
    path = tmp_path / "catalog.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=message) as excinfo:
        call_command("import_trending", str(path))
    assert "\n" not in str(excinfo.value)


def test_demo_catalog_imports_with_the_same_importer(db):
    records, unreadable = read_records(DEMO)
    report = import_records(records)
    assert unreadable == [] and report.failed == []
    assert report.created == 300
    assert Creator.objects.filter(bio__startswith="[demo]").count() == 60
