"""API routes of the audit work: the auditor's worklist of anomalies (under /api/)."""

from django.urls import path

from inspections.worklist_api import AnomalyListView

urlpatterns = [
    path("anomalies/", AnomalyListView.as_view(), name="anomalies"),
]
