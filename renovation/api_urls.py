"""/api/cases/: the renovation-case API (renovation/api.py).

Route names (under the "api" namespace): case-list, case-detail, case-act, case-pay.
"""

from rest_framework.routers import SimpleRouter

from renovation.api import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="case")

urlpatterns = router.urls
