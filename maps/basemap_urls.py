from django.urls import path

from maps import basemap_views

app_name = "basemap"

urlpatterns = [
    # Tianditu tiles through our server, which adds the key (basemap_views.py). No trailing
    # slash: Leaflet fills {z}/{x}/{y} into the URL maps.basemaps.tianditu_proxy_url gives it.
    path(
        "tianditu/<str:layer>/<int:z>/<int:x>/<int:y>",
        basemap_views.tianditu_tile,
        name="tianditu_tile",
    ),
]
