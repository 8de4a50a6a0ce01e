"""The algorithm dashboard: operators edit states, edges, signal weights and thresholds.

An algorithm is saved only if the whole machine is valid (``machine.validate``): every state
has a BATCH edge and a DEFAULT edge or one per signal type, edges join defined states, params
are in range. The three inline formsets are checked together, since an edge and the state it
points to are often added in the same save; errors name the state and what it lacks.
The feed reads the algorithm afresh for every batch, so a saved edit is live at once.
"""
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from . import machine
from .ranking import param_errors
from .models import Algorithm, Edge, SignalType, State
from .services import export_blueprint


class MachineFormSet(forms.BaseInlineFormSet):
    """An inline formset that knows its sibling formsets (shared through ``siblings``)."""

    def __init__(self, *args, siblings=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.siblings = siblings if siblings is not None else []
        self.siblings.append(self)

    def live_rows(self) -> list[dict]:
        """Cleaned data of the forms that will exist after the save."""
        return [
            form.cleaned_data
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]


class EdgeFormSet(MachineFormSet):
    def clean(self):
        super().clean()
        by_model = {fs.model: fs for fs in self.siblings}
        if any(fs.total_error_count() for fs in self.siblings if fs is not self):
            return  # fix the rows first; the machine cannot be judged from broken rows
        algorithm = self.instance
        blueprint = machine.Blueprint(
            states=[machine.StateSpec(r["name"], r["batch_type"], r.get("params") or {}) for r in by_model[State].live_rows()],
            edges=[machine.EdgeSpec(r["start"], r["end"], r["trigger"]) for r in self.live_rows()],
            signals=[machine.SignalSpec(r["name"], r["weight"], r["polarity"]) for r in by_model[SignalType].live_rows()],
            initial=algorithm.initial_state,
            thresholds=algorithm.thresholds,
        )
        errors = machine.validate(blueprint)
        if errors:
            raise ValidationError([f"This algorithm cannot run: {e}" for e in errors])


class StateForm(forms.ModelForm):
    class Meta:
        model = State
        fields = ["name", "batch_type", "params"]

    def clean_params(self):
        params = self.cleaned_data["params"] or {}
        if not isinstance(params, dict):
            raise ValidationError("params must be a JSON object")
        errors = param_errors(params)
        if errors:
            raise ValidationError(errors)
        return params


class EdgeForm(forms.ModelForm):
    class Meta:
        model = Edge
        fields = ["name", "start", "trigger", "end"]

    def clean_trigger(self):
        return self.cleaned_data["trigger"].strip().upper()


class StateInline(admin.TabularInline):
    model = State
    form = StateForm
    formset = MachineFormSet
    extra = 0


class EdgeInline(admin.TabularInline):
    model = Edge
    form = EdgeForm
    formset = EdgeFormSet
    extra = 0


class SignalTypeInline(admin.TabularInline):
    model = SignalType
    formset = MachineFormSet
    extra = 0


class AlgorithmForm(forms.ModelForm):
    class Meta:
        model = Algorithm
        fields = "__all__"

    #: Form field -> ``machine.Thresholds`` field.
    THRESHOLD_FIELDS = {
        "high_attention_ms": "high_ms", "mid_attention_ms": "mid_ms", "low_attention_ms": "low_ms",
        "high_attention_ratio": "high_ratio", "mid_attention_ratio": "mid_ratio", "low_attention_ratio": "low_ratio",
    }

    def clean(self):
        data = super().clean()
        # A field that failed its own validation is missing from cleaned_data: judge the
        # thresholds together only once each is readable (an empty ratio is None, and valid).
        if all(key in data for key in self.THRESHOLD_FIELDS):
            thresholds = machine.Thresholds(**{name: data[key] for key, name in self.THRESHOLD_FIELDS.items()})
            errors = machine.validate_thresholds(thresholds)
            if errors:
                raise ValidationError(errors)
        return data


@admin.register(Algorithm)
class AlgorithmAdmin(admin.ModelAdmin):
    form = AlgorithmForm
    list_display = ["name", "slug", "is_default", "initial_state", "batch_size", "high_attention_ms",
                    "mid_attention_ms", "low_attention_ms", "high_attention_ratio", "mid_attention_ratio",
                    "low_attention_ratio", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    # Signal types first: the edge formset judges the whole machine and needs the others built.
    inlines = [StateInline, SignalTypeInline, EdgeInline]
    actions = ["make_default", "export_json"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_default", "initial_state", "batch_size"]}),
        ("Watch-time thresholds (ms; optionally also watched / duration)", {
            "fields": [("high_attention_ms", "high_attention_ratio"), ("mid_attention_ms", "mid_attention_ratio"),
                       ("low_attention_ms", "low_attention_ratio")],
            "description": "A view is the more attentive of its level by watched ms and, when the three "
                           "ratios are set, its level by watched time / video duration (so a short video "
                           "watched to the end is attention, not a skip). Leave the ratios empty for the "
                           "ms thresholds alone.",
        }),
    ]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        # One list per request: each formset adds itself, so the edge formset sees all three.
        kwargs["siblings"] = request.__dict__.setdefault("_algorithm_formsets", [])
        return kwargs

    def save_model(self, request, obj, form, change):
        if obj.is_default:
            Algorithm.objects.filter(is_default=True).exclude(pk=obj.pk).update(is_default=False)
        super().save_model(request, obj, form, change)

    @admin.action(description="Make the selected algorithm the default")
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one algorithm.", messages.ERROR)
            return
        Algorithm.objects.filter(is_default=True).update(is_default=False)
        queryset.update(is_default=True)

    @admin.action(description="Export as FirstBatch blueprint JSON")
    def export_json(self, request, queryset):
        payload = {a.slug: export_blueprint(a) for a in queryset}
        if len(payload) == 1:
            payload = next(iter(payload.values()))
        response = HttpResponse(json.dumps(payload, indent=2), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="blueprint.json"'
        return response
