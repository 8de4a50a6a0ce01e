"""What the admin pages of every app share.

``ComputedRowsAdmin``: a model whose rows a job writes (topics, cold-start centroids, ingestion
jobs, trained rerankers) is shown to operators but never added or edited by hand: a hand edit
would be overwritten by the next run, or would contradict what the job measured. Deleting stays
as each model's admin decides (deleting the newest reranker rolls it back).
"""
from django.contrib import admin


class ComputedRowsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
