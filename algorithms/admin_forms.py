"""The forms of the algorithm dashboard: a state's params as fields, the edge grid, thresholds
with their units, blueprint import and cloning.

A state's params are stored as JSON (``State.params``); the form shows one field per param
declared in ``ranking.params.PARAMS`` (a number input with its range, or a checkbox) and
writes back only what the operator set: a blank number is the default, and a checkbox writes
its key when it differs from the default or was already stored, so a blueprint saved unchanged
stores the same params. Each value is judged by the same declaration as blueprint import
(``ParamSpec.error``), so a message names the param.

The edges are one grid (``EdgeGridFormSet``): a row per state, a column per trigger (the signal
types, then DEFAULT and BATCH), each cell the state a session moves to (blank: no edge). It is an
inline formset with no forms of its own, so the admin validates and saves it with the state and
signal-type formsets; the whole machine is judged by ``machine.validate`` with the rows as they
will be after the save, so an operator can add a state, its edges and the edges to it in one go:
a state added in this save gets its grid row when the form comes back, which it does, since the
new state has no edges yet. A renamed state keeps its edges.
"""
from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from . import machine
from .blueprints import BlueprintError, parse_blueprint
from .models import Algorithm, Edge, SignalType, State
from .ranking.params import FLAG, PARAMS, ParamSpec

#: Largest blueprint file the admin reads.
MAX_BLUEPRINT_BYTES = 1024 * 1024


# --- a state's params --------------------------------------------------------------------------

def param_field_name(spec: ParamSpec) -> str:
    return f"param_{spec.name}"


def _default_text(spec: ParamSpec) -> str:
    if spec.kind == FLAG:
        return "on" if spec.default else "off"
    return f"{spec.default:g}" if isinstance(spec.default, float) else str(spec.default)


def _param_form_field(spec: ParamSpec) -> forms.Field:
    shapes = "all batch types" if len(spec.batch_types) == 4 else ", ".join(spec.batch_types) + " batches"
    help_text = f"{spec.help} Default {_default_text(spec)}; shapes {shapes}."
    attrs = {"data-batch-types": " ".join(spec.batch_types), "class": "state-param"}
    if spec.kind == FLAG:
        return forms.BooleanField(label=spec.name, required=False, help_text=help_text,
                                  widget=forms.CheckboxInput(attrs=attrs))
    attrs.update(step="1" if spec.whole else "0.01", placeholder=_default_text(spec))
    attrs.update({key: f"{value:g}" for key, value in (("min", spec.minimum), ("max", spec.maximum)) if value is not None})
    # No min/max validators of the field's own: ``ParamSpec.error`` judges the range, in the same
    # words as blueprint import (the browser's own range check is off: the admin's forms are novalidate).
    return forms.FloatField(label=spec.name, required=False, help_text=help_text, widget=forms.NumberInput(attrs=attrs),
                            error_messages={"invalid": f"param {spec.name} must be a number"})


class StateFormBase(forms.ModelForm):
    """A state: name, batch type, and its params as fields (declared below from ``PARAMS``)."""

    class Meta:
        model = State
        fields = ["name", "batch_type"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.params if isinstance(self.instance.params, dict) else {}
        for spec in PARAMS:
            value = spec.default if spec.kind == FLAG else None
            if spec.name in stored and spec.error(stored[spec.name]) is None:
                value = spec.parse(stored[spec.name])
            self.initial.setdefault(param_field_name(spec), value)

    def clean(self):
        data = super().clean()
        stored = self.instance.params if isinstance(self.instance.params, dict) else {}
        params = dict(stored)
        for spec in PARAMS:
            field = param_field_name(spec)
            if field not in data:
                continue  # the field's own error (not a number) is shown already
            value = data[field]
            if spec.kind == FLAG:
                if spec.name not in stored and value == spec.default:
                    continue
            elif value is None:
                params.pop(spec.name, None)
                continue
            elif spec.whole and float(value).is_integer():
                value = int(value)
            error = spec.error(value)
            if error:
                self.add_error(field, error)
            elif not (spec.name in stored and spec.error(stored[spec.name]) is None
                      and spec.parse(stored[spec.name]) == spec.parse(value)):
                params[spec.name] = value  # a changed value (an unchanged one keeps its stored form)
        data["params"] = params
        self.instance.params = params
        return data


StateForm = type("StateForm", (StateFormBase,), {
    "__module__": __name__, **{param_field_name(spec): _param_form_field(spec) for spec in PARAMS},
})


def param_fieldset_lines(per_line: int = 3) -> list[tuple[str, ...]]:
    """The param fields, ``per_line`` to a line, in ``PARAMS`` order (the state inline's layout)."""
    names = [param_field_name(spec) for spec in PARAMS]
    return [tuple(names[i:i + per_line]) for i in range(0, len(names), per_line)]


# --- the machine's formsets --------------------------------------------------------------------

class MachineFormSet(forms.BaseInlineFormSet):
    """An inline formset that knows its sibling formsets (shared through ``siblings``)."""

    def __init__(self, *args, siblings=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.siblings = siblings if siblings is not None else []
        self.siblings.append(self)

    def sibling(self, model):
        return next((fs for fs in self.siblings if fs.model is model), None)

    def live_rows(self) -> list[dict]:
        """Cleaned data of the forms that will exist after the save."""
        return [
            form.cleaned_data
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]

    def live_names(self) -> list[str]:
        """The names the rows will have after the save, as posted (or as stored, unbound), in
        order; a form that failed validation still counts with its posted name."""
        names = []
        for form in self.forms:
            cleaned = getattr(form, "cleaned_data", None) or {}
            deleted = cleaned.get("DELETE") or ("DELETE" in form.fields and form.is_bound and form["DELETE"].value())
            if deleted:
                continue
            name = str(cleaned.get("name") or form["name"].value() or "").strip()
            if name and name not in names:
                names.append(name)
        return names

    def renames(self) -> dict[str, str]:
        """Stored name -> posted name, for the rows renamed in this save."""
        renamed = {}
        for form in self.forms:
            old = form.initial.get("name")
            new = str((getattr(form, "cleaned_data", None) or {}).get("name") or form["name"].value() or "").strip()
            if form.instance.pk and old and new and old != new:
                renamed[old] = new
        return renamed


class EdgeGridFormSet(MachineFormSet):
    """The edges as a grid of states x triggers (see the module docstring). Posted fields:
    ``<prefix>-grid-row-<i>`` (a row's state as rendered), ``<prefix>-grid-col-<j>`` (a column's
    trigger) and ``<prefix>-grid-<i>-<j>`` (the target state, blank for no edge)."""

    def __init__(self, *args, **kwargs):
        kwargs["queryset"] = Edge.objects.none()  # no forms: the grid is the input
        super().__init__(*args, **kwargs)
        self.stored = ({(e.start, e.trigger): e for e in self.instance.edges.all()}
                       if self.instance.pk else {})

    # What the machine will be.
    def states(self) -> list[str]:
        formset = self.sibling(State)
        return formset.live_names() if formset else sorted({start for start, _ in self.stored})

    def triggers(self) -> list[str]:
        formset = self.sibling(SignalType)
        signals = formset.live_names() if formset else []
        return signals + [machine.DEFAULT, machine.BATCH]

    def _posted_cells(self) -> dict[tuple[str, str], str]:
        rows, cols, i = {}, {}, 0
        while f"{self.prefix}-grid-row-{i}" in self.data:
            rows[i] = self.data[f"{self.prefix}-grid-row-{i}"]
            i += 1
        j = 0
        while f"{self.prefix}-grid-col-{j}" in self.data:
            cols[j] = self.data[f"{self.prefix}-grid-col-{j}"]
            j += 1
        return {(row, col): str(self.data.get(f"{self.prefix}-grid-{i}-{j}", "")).strip()
                for i, row in rows.items() for j, col in cols.items()}

    def wanted_edges(self) -> dict[tuple[str, str], str]:
        """(start, trigger) -> end, as the save will leave them: the posted grid with renamed
        states followed, without the rows of deleted states and the columns of deleted signal
        types (their edges go with them)."""
        if not self.is_bound:
            return {key: edge.end for key, edge in self.stored.items()}
        renamed = self.sibling(State).renames() if self.sibling(State) else {}
        states, triggers = set(self.states()), set(self.triggers())
        wanted = {}
        for (row, trigger), target in self._posted_cells().items():
            start = renamed.get(row, row)
            if target and start in states and trigger in triggers:
                wanted[(start, trigger)] = renamed.get(target, target)
        return wanted

    def grid(self) -> dict:
        """What the template draws: rows of cells, each with its posted name and value."""
        states, triggers, wanted = self.states(), self.triggers(), self.wanted_edges()
        rows = []
        for i, state in enumerate(states):
            cells = []
            for j, trigger in enumerate(triggers):
                target = wanted.get((state, trigger), "")
                cells.append({"name": f"{self.prefix}-grid-{i}-{j}", "trigger": trigger, "value": target,
                              "undefined": bool(target) and target not in states})
            rows.append({"state": state, "name": f"{self.prefix}-grid-row-{i}", "cells": cells})
        columns = [{"trigger": t, "name": f"{self.prefix}-grid-col-{j}"} for j, t in enumerate(triggers)]
        return {"columns": columns, "rows": rows, "states": states}

    def clean(self):
        super().clean()
        if any(fs.total_error_count() for fs in self.siblings if fs is not self):
            return  # fix the rows first; the machine cannot be judged from broken rows
        states, signals = self.sibling(State), self.sibling(SignalType)
        order = {t: i for i, t in enumerate(self.triggers())}
        edges = sorted(self.wanted_edges().items(), key=lambda item: (item[0][0], order.get(item[0][1], 0)))
        blueprint = machine.Blueprint(
            states=[machine.StateSpec(r["name"], r["batch_type"], r.get("params") or {}) for r in states.live_rows()],
            edges=[machine.EdgeSpec(start, end, trigger) for (start, trigger), end in edges],
            signals=[machine.SignalSpec(r["name"], r["weight"], r["polarity"]) for r in signals.live_rows()],
            initial=self.instance.initial_state,
            thresholds=self.instance.thresholds,
        )
        errors = machine.validate(blueprint)
        if errors:
            raise ValidationError([f"This algorithm cannot run: {e}" for e in errors])

    def save(self, commit=True):
        """Write the grid as Edge rows, one by one (each change is in the history)."""
        wanted = self.wanted_edges()
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        stored = {(e.start, e.trigger): e for e in self.instance.edges.all()}
        for key, edge in stored.items():
            if key not in wanted:
                edge.delete()
                self.deleted_objects.append(edge)
        for (start, trigger), end in wanted.items():
            edge = stored.get((start, trigger))
            if edge is None:
                edge = Edge.objects.create(algorithm=self.instance, start=start, trigger=trigger, end=end)
                self.new_objects.append(edge)
            elif edge.end != end:
                edge.end = end
                edge.save()
                self.changed_objects.append((edge, ["end"]))
        return self.new_objects + [edge for edge, _ in self.changed_objects]


# --- the algorithm -----------------------------------------------------------------------------

class AlgorithmForm(forms.ModelForm):
    class Meta:
        model = Algorithm
        fields = "__all__"
        labels = {
            "high_attention_ms": "High attention from (ms)", "mid_attention_ms": "Mid attention from (ms)",
            "low_attention_ms": "Low attention from (ms)",
            "high_attention_ratio": "or from (ratio)", "mid_attention_ratio": "or from (ratio)",
            "low_attention_ratio": "or from (ratio)",
            "traffic_share": "Traffic share (%)", "batch_size": "Batch size (videos)",
        }
        widgets = {
            **{f"{level}_attention_ms": forms.NumberInput(attrs={"min": "1", "step": "100", "class": "unit-ms"})
               for level in ("high", "mid", "low")},
            **{f"{level}_attention_ratio": forms.NumberInput(
                attrs={"min": "0", "max": str(machine.MAX_WATCH_RATIO), "step": "0.05", "class": "unit-ratio"})
               for level in ("high", "mid", "low")},
            "traffic_share": forms.NumberInput(attrs={"min": "0", "max": "100", "step": "1"}),
        }

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


class CloneForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, help_text="The new algorithm's slug (its name in URLs and the API).")

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Algorithm.objects.filter(slug=slug).exists():
            raise ValidationError(f"an algorithm with the slug '{slug}' exists already")
        return slug


class ImportBlueprintForm(forms.Form):
    """A FirstBatch blueprint JSON file, parsed and validated whole before anything is saved."""

    file = forms.FileField(label="Blueprint JSON", help_text="FirstBatch blueprint JSON (nodes, edges, signals), "
                                                             "as exported here or by FirstBatch.")
    slug = forms.SlugField(max_length=100)
    name = forms.CharField(max_length=200, required=False, help_text="Blank: the slug.")
    replace = forms.BooleanField(required=False, label="Replace the algorithm with this slug if there is one")
    make_default = forms.BooleanField(required=False, label="Make it the default")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BLUEPRINT_BYTES:
            raise ValidationError(f"the file is {upload.size} bytes; a blueprint is at most {MAX_BLUEPRINT_BYTES}")
        try:
            data = json.loads(upload.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise ValidationError("the file is not UTF-8 text")
        except json.JSONDecodeError as exc:
            raise ValidationError(f"the file is not valid JSON: {exc}")
        try:
            parse_blueprint(data)
        except BlueprintError as exc:
            raise ValidationError(exc.errors)
        return data

    def clean(self):
        data = super().clean()
        slug = data.get("slug")
        if slug and not data.get("replace") and Algorithm.objects.filter(slug=slug).exists():
            self.add_error("slug", f"an algorithm with the slug '{slug}' exists already (tick Replace to overwrite it)")
        return data
