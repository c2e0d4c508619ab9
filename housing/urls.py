from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.generic import RedirectView

from housing import views

app_name = "housing"

urlpatterns = [
    path(
        "",
        login_required(RedirectView.as_view(pattern_name="housing:household_list")),
        name="home",
    ),
    path("households/", views.household_list_view, name="household_list"),
    path("households/<int:pk>/", views.household_detail_view, name="household_detail"),
    path(
        "households/<int:pk>/reveal-ids/",
        views.household_reveal_ids_view,
        name="household_reveal_ids",
    ),
    path("regions/", views.region_index_view, name="region_index"),
    path("regions/<str:code>/", views.region_detail_view, name="region_detail"),
]
