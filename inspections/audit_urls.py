"""Pages of the audit work: the auditor's worklist of anomalies."""

from django.urls import path

from inspections import worklist_views

app_name = "audit"

urlpatterns = [
    path("audit/worklist/", worklist_views.worklist_view, name="worklist"),
]
