"""Pages of the reports app: my exports, asking for one, downloading it, verifying a file."""

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("exports/", views.export_list_view, name="export_list"),
    path("exports/new/", views.export_create_view, name="export_create"),
    path("exports/status/", views.export_status_view, name="export_status"),
    path("exports/<int:pk>/download/", views.export_download_view, name="export_download"),
    path("exports/<int:pk>/retry/", views.export_retry_view, name="export_retry"),
    path("verify/", views.verify_view, name="verify"),
]
