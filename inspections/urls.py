from django.urls import path

from inspections import field_views, views

app_name = "inspections"

urlpatterns = [
    # The field page and its offline machinery (field_views.py).
    path("field/", field_views.field_page, name="field"),
    path("field/sw.js", field_views.field_service_worker, name="field_sw"),
    path("field/manifest.webmanifest", field_views.field_manifest, name="field_manifest"),
    # Photo files, through a permission check (views.py): variant is display, thumb or original.
    path("photos/<uuid:key>/<str:variant>/", views.photo_file, name="photo_file"),
]
