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
