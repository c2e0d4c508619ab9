from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("households/<int:pk>/", views.household_detail_view, name="household_detail"),
    path(
        "households/<int:pk>/reveal-ids/",
        views.household_reveal_ids_view,
        name="household_reveal_ids",
    ),
    path("regions/", views.region_index_view, name="region_index"),
    path("regions/<str:code>/", views.region_detail_view, name="region_detail"),
]
