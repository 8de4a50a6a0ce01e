"""The algorithm dashboard: operators see, edit, clone, import and export algorithms.

An algorithm's change page shows its machine as a picture (``diagram.mermaid_source`` of the
saved rows, drawn by the vendored Mermaid), its states with their params as form fields, its
signal types, and its edges as a grid of states x triggers (``admin_forms``). An algorithm is
saved only if the whole machine is valid (``machine.validate``): every state has a BATCH edge
and a DEFAULT edge or one per signal type, edges join defined states, params are in range. The
three inline formsets are checked together, since an edge and the state it points to are often
added in the same save; errors name the state and what it lacks. The feed reads the algorithm
afresh for every batch, so a saved edit is live at once.

Every change (the algorithm's fields, its states, edges and signal types) is in the history
page, old -> new, with who made it (django-simple-history). States, edges and signal types are
parts of their algorithm: whoever may change the algorithm may change them, and staff with the
view permission alone see the page read-only.

Other dashboard pages extend this admin: ``AlgorithmAdmin.tool_urls`` lists the per-algorithm
pages (compose ``get_urls`` from it), and the change form's ``algorithm_tools`` block takes
more buttons.
"""
import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from tokfeed.admin_views import ComputedRowsAdmin

from . import audit, services
from .admin_forms import (
    AlgorithmForm, CloneForm, EdgeGridFormSet, ImportBlueprintForm, MachineFormSet, StateForm, param_fieldset_lines,
)
from .diagram import mermaid_source
from .models import Algorithm, Edge, RerankerModel, SignalType, State
from .selectors import load_blueprint


class PartOfAlgorithm:
    """An inline whose rows are parts of the algorithm: the algorithm's permissions are theirs."""

    def _algorithm_admin(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        return self._algorithm_admin().has_view_or_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        if obj is None:
            return self._algorithm_admin().has_add_permission(request)
        return self._algorithm_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self._algorithm_admin().has_add_permission(request) or self._algorithm_admin().has_change_permission(request)
        return self._algorithm_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


class StateInline(PartOfAlgorithm, admin.StackedInline):
    model = State
    form = StateForm
    formset = MachineFormSet
    extra = 0
    classes = ["state-inline"]

    def get_fieldsets(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return [(None, {"fields": [("name", "batch_type"), "params"]})]  # read-only: the stored params
        return [
            (None, {"fields": [("name", "batch_type")]}),
            ("Params", {"fields": param_fieldset_lines(),
                        "description": "Blank fields take the default shown in grey. Params that do not shape "
                                       "the state's batch type are hidden."}),
        ]


class SignalTypeInline(PartOfAlgorithm, admin.TabularInline):
    model = SignalType
    formset = MachineFormSet
    extra = 0


class EdgeGridInline(PartOfAlgorithm, admin.TabularInline):
    """The edges, as one grid (``admin_forms.EdgeGridFormSet``)."""

    model = Edge
    formset = EdgeGridFormSet
    template = "admin/algorithms/algorithm/edge_grid.html"
    fields = ["start", "trigger", "end"]
    extra = 0
    max_num = 0  # no forms of its own, and no "add another" button


@admin.register(Algorithm)
class AlgorithmAdmin(SimpleHistoryAdmin):
    form = AlgorithmForm
    change_form_template = "admin/algorithms/algorithm/change_form.html"
    change_list_template = "admin/algorithms/algorithm/change_list.html"
    object_history_template = "admin/algorithms/algorithm/object_history.html"
    list_display = ["name", "slug", "is_default", "traffic_share", "initial_state", "batch_size",
                    "high_attention_ms", "mid_attention_ms", "low_attention_ms", "high_attention_ratio",
                    "mid_attention_ratio", "low_attention_ratio", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    # Signal types first: the edge grid judges the whole machine and needs the others built.
    inlines = [StateInline, SignalTypeInline, EdgeGridInline]
    actions = ["make_default_action", "clone_action", "export_json"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_default", "traffic_share", "initial_state", "batch_size"]}),
        ("Watch-time thresholds: milliseconds watched, and optionally watched time / video duration", {
            "fields": [("high_attention_ms", "high_attention_ratio"), ("mid_attention_ms", "mid_attention_ratio"),
                       ("low_attention_ms", "low_attention_ratio")],
            "description": "A view is the more attentive of its level by watched ms and, when the three "
                           "ratios are set, its level by watched time / video duration (so a short video "
                           "watched to the end is attention, not a skip). Leave the ratios empty for the "
                           "ms thresholds alone.",
        }),
    ]

    class Media:
        css = {"all": ["css/admin-algorithm.css"]}  # the scripts: change_form.html (deferred, in order)

    # --- the change form ---------------------------------------------------------------------

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        # One list per request: each formset adds itself, so the edge grid sees all three.
        kwargs["siblings"] = request.__dict__.setdefault("_algorithm_formsets", [])
        return kwargs

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            # Built from the saved rows on every render: the picture after a save is the new machine.
            context["machine_diagram"] = mermaid_source(load_blueprint(obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def construct_change_message(self, request, form, formsets, add=False):
        # Django labels a changed inline row's fields from the formset's first form; the edge
        # grid has no forms, so its changes are described here.
        grids = [fs for fs in formsets if isinstance(fs, EdgeGridFormSet)]
        message = super().construct_change_message(request, form, [fs for fs in formsets if fs not in grids], add)
        for grid in grids:
            message += [{"added": {"name": "edge", "object": str(edge)}} for edge in grid.new_objects]
            message += [{"changed": {"name": "edge", "object": str(edge), "fields": fields}}
                        for edge, fields in grid.changed_objects]
            message += [{"deleted": {"name": "edge", "object": str(edge)}} for edge in grid.deleted_objects]
        return message

    def save_model(self, request, obj, form, change):
        if obj.is_default:
            services.clear_other_defaults(obj)
        super().save_model(request, obj, form, change)

    # --- history -----------------------------------------------------------------------------

    def history_view(self, request, object_id, extra_context=None):
        extra = {"part_changes": audit.part_changes(int(object_id)) if str(object_id).isdigit() else []}
        return super().history_view(request, object_id, extra_context={**extra, **(extra_context or {})})

    def revert_disabled(self, request, obj=None):
        # Reverting the algorithm row alone would skip the machine's validation: edit instead.
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)

    # --- the dashboard's own pages -----------------------------------------------------------

    def tool_urls(self) -> list:
        """The per-algorithm pages beside the admin's own (before its catch-all object URLs)."""
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="algorithms_algorithm_import"),
            path("<int:object_id>/clone/", view(self.clone_view), name="algorithms_algorithm_clone"),
            path("<int:object_id>/export/", view(self.export_view), name="algorithms_algorithm_export"),
            path("<int:object_id>/make-default/", view(self.make_default_view), name="algorithms_algorithm_make_default"),
        ]

    def get_urls(self):
        return self.tool_urls() + super().get_urls()

    def _page(self, request, template, title, obj=None, **context):
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title,
                   "original": obj, **context}
        return TemplateResponse(request, template, context)

    def _algorithm(self, request, object_id, permission) -> Algorithm:
        algorithm = get_object_or_404(Algorithm, pk=object_id)
        if not permission(request, algorithm):
            raise PermissionDenied
        return algorithm

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportBlueprintForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            existing = Algorithm.objects.filter(slug=data["slug"]).first()
            if existing is not None and not self.has_change_permission(request, existing):
                raise PermissionDenied
            algorithm = services.save_blueprint(data["file"], slug=data["slug"], name=data["name"] or None,
                                                make_default=data["make_default"])
            states, edges = algorithm.states.count(), algorithm.edges.count()
            self.log_change(request, algorithm, f"Imported a blueprint ({states} states, {edges} edges)") if existing \
                else self.log_addition(request, algorithm, "Imported a blueprint")
            self.message_user(request, f"Imported {algorithm.slug}: {states} states, {edges} edges.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:algorithms_algorithm_change", args=[algorithm.pk]))
        return self._page(request, "admin/algorithms/algorithm/import_form.html", "Import a blueprint", form=form)

    def clone_view(self, request, object_id):
        source = self._algorithm(request, object_id, self.has_view_or_change_permission)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CloneForm(request.POST or None, initial={"name": f"Copy of {source.name}", "slug": f"{source.slug}-copy"})
        if request.method == "POST" and form.is_valid():
            clone = services.clone_algorithm(source, slug=form.cleaned_data["slug"], name=form.cleaned_data["name"])
            self.log_addition(request, clone, f"Cloned from {source.slug}")
            self.message_user(request, f"{clone.slug} is a copy of {source.slug}: not the default, no traffic share.",
                              messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:algorithms_algorithm_change", args=[clone.pk]))
        return self._page(request, "admin/algorithms/algorithm/clone_form.html", f"Clone {source}", source, form=form)

    def export_view(self, request, object_id):
        algorithm = self._algorithm(request, object_id, self.has_view_or_change_permission)
        return self._json_download(services.export_blueprint(algorithm), f"{algorithm.slug}.json")

    def make_default_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        algorithm = self._algorithm(request, object_id, self.has_change_permission)
        services.make_default(algorithm)
        self.log_change(request, algorithm, "Made the default")
        self.message_user(request, f"{algorithm} is the default: sessions that name no algorithm get it.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:algorithms_algorithm_change", args=[algorithm.pk]))

    @staticmethod
    def _json_download(payload, filename: str) -> HttpResponse:
        response = HttpResponse(json.dumps(payload, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    # --- changelist actions ------------------------------------------------------------------

    @admin.action(description="Make the selected algorithm the default", permissions=["change"])
    def make_default_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one algorithm.", messages.ERROR)
            return
        algorithm = queryset.get()
        services.make_default(algorithm)
        self.log_change(request, algorithm, "Made the default")

    @admin.action(description="Clone the selected algorithm", permissions=["add"])
    def clone_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one algorithm.", messages.ERROR)
            return
        return HttpResponseRedirect(reverse("admin:algorithms_algorithm_clone", args=[queryset.get().pk]))

    @admin.action(description="Export as FirstBatch blueprint JSON", permissions=["view"])
    def export_json(self, request, queryset):
        payload = {a.slug: services.export_blueprint(a) for a in queryset}
        if len(payload) == 1:
            return self._json_download(next(iter(payload.values())), f"{next(iter(payload))}.json")
        return self._json_download(payload, "blueprints.json")


@admin.register(RerankerModel)
class RerankerModelAdmin(ComputedRowsAdmin):
    """The learned rerankers, newest first (the newest is in use). Read-only: the training job
    (``manage.py train_reranker``) writes them; deleting the newest puts the one before it back
    in use, or the hand-weighted reranker when none is left."""

    list_display = ("id", "trained_at", "examples", "positives", "validation_auc", "similarity_auc", "library_version")
    exclude = ("model",)
    readonly_fields = ("trained_at", "examples", "positives", "metrics", "features", "library_version")

    @admin.display(description="validation AUC")
    def validation_auc(self, obj):
        return _rounded(obj.metrics.get("validation_auc"))

    @admin.display(description="similarity alone")
    def similarity_auc(self, obj):
        return _rounded(obj.metrics.get("similarity_auc"))


def _rounded(value):
    return None if value is None else round(value, 3)
