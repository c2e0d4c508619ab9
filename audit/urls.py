"""Pages of the audit work: the auditor's worklist of anomalies."""

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("audit/worklist/", views.worklist_view, name="worklist"),
]
