"""The renovation-case pages (renovation/views.py)."""

from django.urls import path

from renovation import views

app_name = "cases"

urlpatterns = [
    path("cases/", views.case_list_view, name="case_list"),
    path("cases/batch/", views.case_batch_view, name="case_batch"),
    path("cases/<int:pk>/", views.case_detail_view, name="case_detail"),
    path("cases/<int:pk>/act/", views.case_act_view, name="case_act"),
    path("cases/<int:pk>/payments/", views.case_pay_view, name="case_pay"),
]
