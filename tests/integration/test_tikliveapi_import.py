"""``manage.py import_tikliveapi``: saved responses into the catalog through the trending
importer's upsert, and the live client against a real HTTP server serving the same files."""
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Comment, Creator, Hashtag, Music, Video
from catalog.tikliveapi import import_directory
from catalog.tikliveapi_client import STATE_FILE, Client, FetchError, fetch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tikliveapi"
KEY = "test-key"


def test_saved_responses_import_profiles_posts_and_comments(db, capsys):
    call_command("import_tikliveapi", str(FIXTURES))
    out = capsys.readouterr().out
    assert "userinfo-by-username: 2 created, 0 updated, user-posts: 5 created" in out
    assert "post-comments: 4 created" in out and "0 failed" in out

    ana = Creator.objects.get(external_id="6800000000000000001")
    # The profile's bio and badge survive the posts' author{} (imported after it, knowing neither).
    assert (ana.handle, ana.display_name, ana.verified) == ("chef_ana", "Ana Cooks", True)
    assert ana.bio.startswith("Home cooking") and ana.follower_count == 120000 and ana.video_count == 3
    video = Video.objects.select_related("music").get(external_id="7300000000000000003")
    assert video.creator_id == ana.pk and video.play_count == 90000 and video.like_count == 8100
    assert video.music.name == "original sound - chef_ana" and video.music.original
    assert set(video.hashtags.values_list("name", flat=True)) == {"pasta", "cooking"}
    assert Video.objects.get(external_id="7300000000000000001").music is None
    comment = Comment.objects.get(external_id="7400000000000000001")
    assert comment.video_id == video.pk and comment.author_handle == "viewer_vic"
    assert (comment.like_count, comment.reply_count) == (12, 1)

    counts = (Creator.objects.count(), Video.objects.count(), Music.objects.count(), Hashtag.objects.count(),
              Comment.objects.count())
    call_command("import_tikliveapi", str(FIXTURES))
    assert "userinfo-by-username: 0 created, 2 updated, user-posts: 0 created, 5 updated" in capsys.readouterr().out
    assert counts == (Creator.objects.count(), Video.objects.count(), Music.objects.count(), Hashtag.objects.count(),
                      Comment.objects.count())


def test_wrong_shapes_and_bad_records_are_reported_and_the_rest_import(db, tmp_path):
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    # A posts response saved as a profile: refused whole, naming the shape it should have had.
    shutil.copy(FIXTURES / "user-posts" / "goal_gus.0.json", tmp_path / "userinfo-by-username" / "mixed_up.json")
    posts = json.loads((FIXTURES / "user-posts" / "goal_gus.0.json").read_text())
    good, camel = posts["videos"]
    camel = dict(camel, video_id="7300000000000000099", diggCount=camel["digg_count"])
    posts["videos"] = [dict(good, video_id="7300000000000000098"), camel, {"video_id": "7300000000000000097"}]
    (tmp_path / "user-posts" / "more.0.json").write_text(json.dumps(posts))
    (tmp_path / "post-comments" / "orphan.0.json").write_text(json.dumps({"comments": [
        {"id": "7400000000000000099", "video_id": "1", "text": "no such video", "user": {"unique_id": "x"}}]}))

    report = import_directory(tmp_path)

    failures = {(f.file, f.index, f.field) for f in report.failed}
    assert failures == {
        ("userinfo-by-username/mixed_up.json", None, None),
        ("user-posts/more.0.json", 1, "diggCount"),
        ("user-posts/more.0.json", 2, "author"),
        ("post-comments/orphan.0.json", 0, "video_id"),
    }
    shape = next(f for f in report.failed if f.file.endswith("mixed_up.json"))
    assert "expected the /userinfo-by-username/ shape" in shape.message and "/user-posts/" in shape.message
    assert Video.objects.filter(external_id="7300000000000000098").exists()
    assert not Video.objects.filter(external_id__in=["7300000000000000099", "7300000000000000097"]).exists()
    with pytest.raises(CommandError, match="4 failed"):
        call_command("import_tikliveapi", str(tmp_path))


class FixtureService(BaseHTTPRequestHandler):
    """The service's three endpoints over the fixture files; ``/user-posts/`` fails with a 503
    on its first ``failures_left`` calls (a transient outage the client must ride out)."""

    failures_left = 0
    calls: list = []

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).calls.append((url.path, query))
        if self.headers.get("X-Api-Key") != KEY:
            return self._send(401, {"code": -1, "msg": "bad key"})
        endpoint = url.path.strip("/")
        if endpoint == "user-posts" and type(self).failures_left > 0:
            type(self).failures_left -= 1
            return self._send(503, {"code": -1, "msg": "busy"}, {"Retry-After": "0"})
        name = {"userinfo-by-username": query.get("username"), "user-posts": f"{query.get('unique_id')}.{query.get('cursor')}",
                "post-comments": f"{query.get('video_id')}.{query.get('cursor')}"}.get(endpoint)
        path = FIXTURES / endpoint / f"{name}.json" if name else None
        if path is None or not path.exists():
            if endpoint == "post-comments":
                return self._send(200, {"comments": [], "hasMore": False})
            return self._send(404, {"code": -1, "msg": "not found"})
        self._send(200, json.loads(path.read_text()))

    def _send(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixtureService)
    FixtureService.calls, FixtureService.failures_left = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_live_fetch_retries_a_transient_failure_and_resumes_after_the_budget(db, service, tmp_path, settings, capsys):
    FixtureService.failures_left = 1
    # 1 profile + 1 failed and 1 good posts call = 3; the budget stops it before any comments.
    first = fetch(tmp_path, Client(service, KEY, backoff_s=0.01, budget=3), ["chef_ana"], comment_videos=2)
    assert first.fetched == 2 and first.stopped.startswith("the request budget (3) is spent")
    assert [path for path, _ in FixtureService.calls] == ["/userinfo-by-username/", "/user-posts/", "/user-posts/"]
    assert json.loads((tmp_path / STATE_FILE).read_text())["fetched"]

    # The second run reads what the first saved and fetches only the rest.
    FixtureService.calls.clear()
    settings.TIKLIVEAPI_BASE_URL, settings.TIKLIVEAPI_KEY = service, KEY
    call_command("import_tikliveapi", str(tmp_path), "--fetch", "chef_ana", "--comment-videos", "2")
    out = capsys.readouterr().out
    assert "fetched 2 responses (2 saved earlier), 2 requests" in out
    assert [q["video_id"] for path, q in FixtureService.calls] == ["7300000000000000003", "7300000000000000002"]
    assert "user-posts: 3 created" in out and "post-comments: 3 created" in out
    assert Comment.objects.filter(author_handle="viewer_vic").count() == 2


def test_live_fetch_gives_up_on_a_refused_key_and_after_its_retries(service, tmp_path):
    with pytest.raises(FetchError, match="HTTP 401 \\(the API key was refused\\)"):
        Client(service, "wrong").get("userinfo-by-username", {"username": "chef_ana"})
    FixtureService.failures_left = 5
    client = Client(service, KEY, retries=2, backoff_s=0.01)
    with pytest.raises(FetchError, match="failed 3 times, last: HTTP 503"):
        client.get("user-posts", {"unique_id": "chef_ana", "cursor": 0})
    assert client.requests_made == 3
    report = fetch(tmp_path, Client(service, KEY), ["nobody"])
    assert report.errors == ["@nobody: /userinfo-by-username/ answered HTTP 404 (Not Found)"]
