"""/api/: the REST API, its token endpoint, its OpenAPI schema and browsable docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from accounts.api import TokenRevokeView, TokenView
from housing.api import FamilyMemberViewSet, HouseholdViewSet, RegionViewSet
from inspections.api import InspectionViewSet, PhotoSlotsView, PhotoViewSet
from inspections.field_api import (
    FieldHouseholdContextView,
    FieldVillageBundleView,
    FieldVillageListView,
)

app_name = "api"

router = SimpleRouter()
router.register("households", HouseholdViewSet, basename="household")
router.register("members", FamilyMemberViewSet, basename="member")
router.register("regions", RegionViewSet, basename="region")
router.register("inspections", InspectionViewSet, basename="inspection")
router.register("photos", PhotoViewSet, basename="photo")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/logout/", TokenRevokeView.as_view(), name="logout"),
    # The schema and its docs hold no data, so they are open to anonymous readers.
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Split: the page's start-up script is served from docs/?script= rather than inline, which
    # the Content-Security-Policy would refuse.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("photo-slots/", PhotoSlotsView.as_view(), name="photo-slots"),
    # The field page's offline villages and a household's context (inspections/field_api.py).
    path("field/villages/", FieldVillageListView.as_view(), name="field-villages"),
    path("field/villages/<str:code>/", FieldVillageBundleView.as_view(), name="field-village"),
    path(
        "field/households/<int:pk>/context/",
        FieldHouseholdContextView.as_view(),
        name="field-household-context",
    ),
    path("", include("renovation.api_urls")),
    path("", include("audit.api_urls")),
    *router.urls,
]
