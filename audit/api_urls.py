"""API routes of the audit work: the auditor's worklist of anomalies (under /api/)."""

from django.urls import path

from audit.api import AnomalyListView

urlpatterns = [
    path("anomalies/", AnomalyListView.as_view(), name="anomalies"),
]
