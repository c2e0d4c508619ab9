"""The renovation-case pages (inspections/case_views.py)."""

from django.urls import path

from inspections import case_views

app_name = "cases"

urlpatterns = [
    path("cases/", case_views.case_list_view, name="case_list"),
    path("cases/batch/", case_views.case_batch_view, name="case_batch"),
    path("cases/<int:pk>/", case_views.case_detail_view, name="case_detail"),
    path("cases/<int:pk>/act/", case_views.case_act_view, name="case_act"),
    path("cases/<int:pk>/payments/", case_views.case_pay_view, name="case_pay"),
]
