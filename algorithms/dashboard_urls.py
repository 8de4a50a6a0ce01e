"""The A/B dashboard's pages, under ``admin/dashboard/`` (included before the admin's own URLs).
Each is wrapped by ``admin.site.admin_view``: active staff only."""
from django.contrib import admin
from django.urls import path

from . import dashboard_views as views

app_name = "ab-dashboard"

urlpatterns = [
    path("traffic/", admin.site.admin_view(views.traffic_split), name="traffic"),
    path("comparison/", admin.site.admin_view(views.comparison), name="comparison"),
    path("comparison/plot.png", admin.site.admin_view(views.comparison_plot), name="comparison-plot"),
    path("simulate/<slug:slug>/", admin.site.admin_view(views.simulate), name="simulate"),
    path("simulations/<int:run_id>/progress/", admin.site.admin_view(views.simulation_progress),
         name="simulation-progress"),
    path("simulations/<int:run_id>/chart.png", admin.site.admin_view(views.simulation_chart),
         name="simulation-chart"),
]
