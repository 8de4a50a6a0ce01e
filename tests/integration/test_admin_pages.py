"""Every admin page an operator can open renders (changelist and a change form)."""
import uuid

import pytest
from django.contrib import admin
from django.urls import reverse

from feed import services


@pytest.fixture
def one_of_each(catalog_db):
    session = services.start_session()
    batch = services.next_batch(session.id)
    services.record_view(session.id, video_id=batch.items[0].video.pk, event_id=uuid.uuid4(), watched_ms=16000)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_admin_changelist_and_change_form_render(admin_client, one_of_each, model):
    meta = model._meta
    changelist = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert changelist.status_code == 200
    obj = model.objects.first()
    if obj is not None:
        change = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200


@pytest.mark.parametrize("url_name", ["admin:catalog_topic_add", "admin:feed_bucketcentroid_add",
                                      "admin:catalog_ingestjob_add", "admin:algorithms_rerankermodel_add"])
def test_rows_a_job_computes_cannot_be_added_by_hand(admin_client, catalog_db, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 403


def test_topics_and_tag_counts_are_shown_to_operators(admin_client, catalog_db):
    from catalog.models import Hashtag, Topic

    topic = Topic.objects.order_by("-size").first()
    topics = admin_client.get(reverse("admin:catalog_topic_changelist")).content.decode()
    assert "column-size" in topics and f'<td class="field-size">{topic.size}</td>' in topics
    change = admin_client.get(reverse("admin:catalog_topic_change", args=[topic.pk])).content.decode()
    assert 'name="_save"' not in change  # shown, not editable

    tag = Hashtag.objects.order_by("-video_count").first()
    tags = admin_client.get(reverse("admin:catalog_hashtag_changelist"), {"q": tag.name}).content.decode()
    assert "column-video_count" in tags and f">{tag.video_count}<" in tags
