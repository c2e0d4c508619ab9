from django.urls import path

from maps import dashboard_views, views

app_name = "maps"

urlpatterns = [
    path("maps/", views.overview_index_view, name="overview_index"),
    path(
        "maps/tiles/<int:z>/<int:x>/<int:y>.geojson",
        views.tile_view,
        name="tile",
    ),
    path("maps/households/<int:pk>/popup/", views.popup_view, name="popup"),
    path("maps/<str:code>/", views.overview_view, name="overview"),
    path("maps/<str:code>/progress/", dashboard_views.dashboard_view, name="dashboard"),
]
