""""Simulate before shipping": the admin page queues the Celery job (eager here, as with no
broker), which runs the feed evaluation on the real catalog with progress, and the page shows
the run's chart beside earlier runs; a run that cannot go ends failed with its message."""
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from algorithms.models import Algorithm, SimulationRun
from feed.models import FeedSession
from feed.tasks import queue_simulation

SMALL = {"viewers_per_taste": "1", "batches": "3", "tastes": "2", "seed": "0"}


@pytest.fixture
def staff_client(client, catalog_db):
    client.force_login(User.objects.create_superuser("operator", "operator@example.com", "pw"))
    return client


def test_simulate_runs_the_evaluation_with_progress_and_shows_the_chart(staff_client, django_capture_on_commit_callbacks):
    algorithm = Algorithm.objects.get(slug="seed-default")
    default = Algorithm.objects.get(is_default=True)
    url = reverse("ab-dashboard:simulate", args=[algorithm.slug])
    page = staff_client.get(url)
    assert page.status_code == 200 and "No run yet." in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, SMALL)
    assert response.status_code == 302
    run = SimulationRun.objects.get()
    assert response["Location"] == f"{url}?run={run.pk}"
    assert run.status == SimulationRun.Status.DONE, run.error
    # Two algorithms (this one and the default) x two tastes x one viewer.
    assert (run.done, run.total) == (4, 4)
    assert run.algorithm_version == Algorithm.objects.get(pk=algorithm.pk).version
    assert run.result["default"] == default.slug
    feeds = run.result["feeds"]
    assert set(feeds) == {algorithm.slug, default.slug, "random", "ceiling"}
    assert all(len(feed["mean"]["per_batch"]) == 3 for feed in feeds.values())
    assert len(run.result["tastes"]) == 2
    assert not FeedSession.objects.exists()  # the simulated viewers' sessions are gone

    shown = staff_client.get(response["Location"]).content.decode()
    assert "Done: mean on-topic share" in shown
    assert reverse("ab-dashboard:simulation-chart", args=[run.pk]) in shown
    assert f"{feeds[algorithm.slug]['mean']['window_mean']:.3f}" in shown
    chart = staff_client.get(reverse("ab-dashboard:simulation-chart", args=[run.pk]))
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"

    # A second run is listed beside the first.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {**SMALL, "seed": "1"})
    runs_table = staff_client.get(url).content.decode()
    assert runs_table.count('href="?run=') == 2


def test_the_progress_fragment_polls_while_the_run_is_going(staff_client):
    algorithm = Algorithm.objects.get(slug="evidence")
    run = SimulationRun.objects.create(algorithm=algorithm, algorithm_version=algorithm.version,
                                       status=SimulationRun.Status.RUNNING, done=3, total=8)
    fragment = staff_client.get(reverse("ab-dashboard:simulation-progress", args=[run.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in fragment
    assert '<progress value="3" max="8">' in fragment
    assert "3 of 8 simulated viewers" in fragment
    assert "<html" not in fragment  # a fragment, not a page


def test_a_run_that_cannot_go_ends_failed_with_its_message(staff_client, django_capture_on_commit_callbacks):
    algorithm = Algorithm.objects.get(slug="evidence")
    with django_capture_on_commit_callbacks(execute=True):
        run = queue_simulation(algorithm, {"viewers_per_taste": 1, "batches": 500})
    run.refresh_from_db()
    assert run.status == SimulationRun.Status.FAILED and run.finished_at is not None
    assert "500 batches need" in run.error
    page = staff_client.get(reverse("ab-dashboard:simulate", args=[algorithm.slug])).content.decode()
    assert "Simulation failed:" in page and "500 batches need" in page


def test_bad_simulation_options_are_refused_on_the_form(staff_client):
    response = staff_client.post(reverse("ab-dashboard:simulate", args=["evidence"]),
                                 {**SMALL, "viewers_per_taste": "0"})
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    assert not SimulationRun.objects.exists()


def test_staff_without_the_permission_cannot_start_a_simulation(client, catalog_db):
    client.force_login(User.objects.create_user("looker", password="pw", is_staff=True))
    url = reverse("ab-dashboard:simulate", args=["evidence"])
    assert client.get(url).status_code == 200
    assert client.post(url, SMALL).status_code == 403
    assert not SimulationRun.objects.exists()
