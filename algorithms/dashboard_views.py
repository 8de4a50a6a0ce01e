"""The operators' A/B pages in the admin: the traffic split, the comparison of algorithms over a
window (with its plot), and "simulate before shipping" (a Celery job with a progress bar).

Every page is the admin's (``admin.site.admin_view``: active staff only, others go to the login
page). Staff may look; changing the split needs ``algorithms.change_algorithm`` and starting a
simulation ``algorithms.add_simulationrun``. The figures come from ``ab_queries`` and
``ab_stats``; the job is ``feed.tasks.simulate_algorithm``.
"""
from __future__ import annotations

import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms import BaseModelFormSet, modelformset_factory
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from . import ab_queries, ab_stats, traffic
from .models import Algorithm, SimulationRun
from .selectors import default_algorithm

CHANGE_SPLIT = "algorithms.change_algorithm"
START_SIMULATION = "algorithms.add_simulationrun"


def _context(request, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


# --- traffic split ---------------------------------------------------------------------------------

class ShareForm(forms.ModelForm):
    class Meta:
        model = Algorithm
        fields = ["traffic_share"]
        widgets = {"traffic_share": forms.NumberInput(attrs={"min": 0, "max": 100, "step": 1})}


class SplitFormSet(BaseModelFormSet):
    """All algorithms' shares at once: refused unless they sum to 100 or are all 0."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        shares = [(form.instance.slug, form.cleaned_data["traffic_share"]) for form in self.forms]
        try:
            traffic.check_shares(shares)
        except traffic.InvalidSplit as exc:
            raise forms.ValidationError(f"Not saved: {exc}.") from None


SplitForms = modelformset_factory(Algorithm, form=ShareForm, formset=SplitFormSet, extra=0, can_delete=False)


@require_http_methods(["GET", "POST"])
def traffic_split(request):
    """Every algorithm with its share of new sessions; one save changes them all or none."""
    algorithms = Algorithm.objects.order_by("-is_default", "name", "id")
    can_change = request.user.has_perm(CHANGE_SPLIT)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied("changing the traffic split needs the permission to change algorithms")
        formset = SplitForms(request.POST, queryset=algorithms)
        if formset.is_valid():
            with transaction.atomic():
                # Each changed algorithm is saved through the model, so its history records
                # the change (who, old -> new).
                changed = formset.save()
            messages.success(request, f"Traffic split saved ({len(changed)} share(s) changed).")
            return redirect("ab-dashboard:traffic")
    else:
        formset = SplitForms(queryset=algorithms)
    return render(request, "admin/dashboard/traffic.html", _context(
        request, "Traffic split", formset=formset, can_change=can_change,
        can_simulate=request.user.has_perm(START_SIMULATION),
    ))


# --- comparison ------------------------------------------------------------------------------------

#: Windows offered on the page: name -> (length, plot bin).
WINDOWS = {"1h": (timedelta(hours=1), timedelta(minutes=5)),
           "24h": (timedelta(hours=24), timedelta(hours=1)),
           "7d": (timedelta(days=7), timedelta(hours=6))}
#: A custom window is plotted in this many bins.
CUSTOM_BINS = 24


class WindowError(ValueError):
    pass


def parse_window(params, now: datetime) -> tuple[str, datetime, datetime, timedelta]:
    """(name, start, end, plot bin) from ``?window=1h|24h|7d`` or ``?window=custom&start=&end=``
    (ISO dates or date-times, in UTC when they name no zone)."""
    name = params.get("window") or "24h"
    if name in WINDOWS:
        length, step = WINDOWS[name]
        return name, now - length, now, step
    if name != "custom":
        raise WindowError(f"unknown window {name!r}: choose 1h, 24h, 7d or custom")
    bounds = []
    for key in ("start", "end"):
        text = (params.get(key) or "").strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise WindowError(f"the custom window's {key} {text!r} is not a date or date-time "
                              "(e.g. 2026-12-01T09:00)") from None
        bounds.append(moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt_timezone.utc))
    start, end = bounds
    if not start < end:
        raise WindowError("the custom window's start must be before its end")
    return name, start, end, max((end - start) / CUSTOM_BINS, timedelta(minutes=1))


def _format(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key in ("skip_rate", "long_view_rate"):
        return f"{100 * value:.1f}"
    return f"{value:.2f}"


def _comparison_rows(arms: list[ab_stats.Arm]) -> list[dict]:
    """The table as the template shows it: each figure formatted, with its interval and verdict."""
    rows = []
    for arm in arms:
        cells = []
        for key, _, _ in ab_stats.METRICS:
            figure = arm.figures[key]
            est, diff = figure.estimate, figure.versus_control
            cell = {"value": _format(key, est.value), "low": _format(key, est.low), "high": _format(key, est.high),
                    "n": est.n, "has_interval": est.low is not None}
            if diff is not None:
                cell["difference"] = _format(key, diff.value)
                cell["diff_low"], cell["diff_high"] = _format(key, diff.low), _format(key, diff.high)
                cell["verdict"] = ("not enough data" if diff.significant is None
                                   else "significant" if diff.significant else "not yet significant")
            cells.append(cell)
        rows.append({"sums": arm.sums, "is_control": arm.is_control, "cells": cells})
    return rows


@require_http_methods(["GET"])
def comparison(request):
    """Per algorithm over a window: sessions and the compared figures with 95 % intervals, each
    against the default (the control)."""
    try:
        window, start, end, _ = parse_window(request.GET, timezone.now())
    except WindowError as exc:
        messages.error(request, str(exc))
        return render(request, "admin/dashboard/comparison.html",
                      _context(request, "A/B comparison", window="custom", error=str(exc)), status=400)
    control = default_algorithm()
    arms = ab_stats.compare(ab_queries.algorithm_sums(start, end), control.pk)
    return render(request, "admin/dashboard/comparison.html", _context(
        request, "A/B comparison", window=window, windows=list(WINDOWS), start=start, end=end,
        control=control, metrics=ab_stats.METRICS, rows=_comparison_rows(arms),
        plot_query=request.GET.urlencode(), can_simulate=request.user.has_perm(START_SIMULATION),
    ))


def _png(fig) -> HttpResponse:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "no-store"
    return response


def _figure(width: float, height: float, rows: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


@require_http_methods(["GET"])
def comparison_plot(request):
    """Mean watch time and skip rate per time bin and algorithm, as a PNG."""
    try:
        _, start, end, step = parse_window(request.GET, timezone.now())
    except WindowError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    bins = ab_queries.views_over_time(start, end, step)
    names = dict(Algorithm.objects.values_list("id", "slug"))
    fig, (watch, skips) = _figure(10, 6, 2)
    for algorithm_id in sorted({b.algorithm_id for b in bins}):
        own = [b for b in bins if b.algorithm_id == algorithm_id]
        x = [b.starts for b in own]
        label = names.get(algorithm_id, str(algorithm_id))
        watch.plot(x, [b.watched_ms / b.views / 1000 for b in own], marker="o", label=label)
        skips.plot(x, [100 * b.skips / b.views for b in own], marker="o", label=label)
    minutes = round(step.total_seconds() / 60)
    bin_label = f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
    watch.set(ylabel="mean watch time per view (s)",
              title=f"Views of the window's sessions in {bin_label} bins, {start:%Y-%m-%d %H:%M} to "
                    f"{end:%Y-%m-%d %H:%M} UTC")
    skips.set(ylabel="skip rate (%)", ylim=(0, 100), xlabel="time (UTC)")
    watch.set_xlim(start, end)
    skips.set_xlim(start, end)
    if bins:
        watch.legend(loc="upper left", fontsize="small")
    else:
        watch.text(0.5, 0.5, "no views in this window", ha="center", va="center", transform=watch.transAxes)
    return _png(fig)


# --- simulation ------------------------------------------------------------------------------------

class SimulationForm(forms.Form):
    """How big a simulation is: the evaluation's viewers per taste, batches and tastes."""

    viewers_per_taste = forms.IntegerField(min_value=1, max_value=20, initial=2,
                                           help_text="simulated viewers per taste")
    batches = forms.IntegerField(min_value=2, max_value=20, initial=8, help_text="batches each viewer is served")
    tastes = forms.IntegerField(min_value=0, max_value=100, initial=0, required=False,
                                help_text="how many tastes (the largest first); 0 or empty: all")
    seed = forms.IntegerField(min_value=0, initial=0)

    def options(self) -> dict:
        data = self.cleaned_data
        return {"viewers_per_taste": data["viewers_per_taste"], "batches": data["batches"],
                "tastes": data["tastes"] or 0, "seed": data["seed"]}


def _run_summary(run: SimulationRun) -> dict:
    """A run's mean on-topic share over the window, for the algorithm, the default and random."""
    feeds = (run.result or {}).get("feeds", {})
    default = (run.result or {}).get("default")

    def window_mean(slug):
        return feeds.get(slug, {}).get("mean", {}).get("window_mean") if slug else None

    return {"run": run, "share": window_mean(run.algorithm.slug), "default": default,
            "default_share": window_mean(default), "random_share": window_mean("random")}


@require_http_methods(["GET", "POST"])
def simulate(request, slug: str):
    """Start a simulation of ``slug`` (POST) and follow it; earlier runs are listed beside it."""
    from feed.tasks import queue_simulation  # the job lives with its driver, in the feed app

    algorithm = get_object_or_404(Algorithm, slug=slug)
    can_simulate = request.user.has_perm(START_SIMULATION)
    form = SimulationForm(request.POST or None)
    if request.method == "POST":
        if not can_simulate:
            raise PermissionDenied("starting a simulation needs the permission to add simulation runs")
        if form.is_valid():
            run = queue_simulation(algorithm, form.options(), requested_by=request.user)
            return redirect(f"{reverse('ab-dashboard:simulate', args=[slug])}?run={run.pk}")
    runs = list(algorithm.simulation_runs.select_related("algorithm").order_by("-created_at")[:20])
    shown = None
    if (wanted := request.GET.get("run")) and wanted.isdigit():
        shown = next((r for r in runs if r.pk == int(wanted)), None)
    shown = shown or (runs[0] if runs else None)
    return render(request, "admin/dashboard/simulate.html", _context(
        request, f"Simulate {algorithm}", algorithm=algorithm, form=form, can_simulate=can_simulate,
        shown=shown, runs=[_run_summary(r) for r in runs], **(_run_summary(shown) if shown else {}),
    ), status=400 if form.errors else 200)


@require_http_methods(["GET"])
def simulation_progress(request, run_id: int):
    """The fragment htmx polls: the progress bar while the run is queued or running, then its
    chart (or its error)."""
    run = get_object_or_404(SimulationRun.objects.select_related("algorithm"), pk=run_id)
    return render(request, "admin/dashboard/_simulation_progress.html", {"shown": run, **_run_summary(run)})


@require_http_methods(["GET"])
def simulation_chart(request, run_id: int):
    """A finished run's on-topic share per batch (mean over tastes): the algorithm, the default,
    random and the ceiling."""
    run = get_object_or_404(SimulationRun.objects.select_related("algorithm"), pk=run_id, status=SimulationRun.Status.DONE)
    feeds = run.result["feeds"]
    default = run.result.get("default")
    fig, (ax,) = _figure(9, 4.5, 1)
    styles = [(run.algorithm.slug, {"marker": "o", "linewidth": 2.5}),
              (default, {"marker": "s"}),
              ("random", {"color": "0.5", "linestyle": "--", "marker": "."}),
              ("ceiling", {"color": "black", "linestyle": ":"})]
    drawn = set()
    for feed, style in styles:
        if feed and feed in feeds and feed not in drawn:
            per_batch = feeds[feed]["mean"]["per_batch"]
            label = f"{feed} (default)" if feed == default and feed != run.algorithm.slug else feed
            ax.plot(range(1, len(per_batch) + 1), per_batch, label=label, **style)
            drawn.add(feed)
    batches = run.result["settings"]["batches"]
    ax.set(xlabel="batch", ylabel="on-topic share", ylim=(0, 1.05), xticks=range(1, batches + 1),
           title=f"Simulation #{run.pk} of {run.algorithm.slug} (version {run.algorithm_version})")
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)
