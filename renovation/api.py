"""The renovation-case API: list, one case, open, every step of the chain, payments.

Thin views: parse, authorize (the services check role, state and evidence), call one
service or selector, answer. The rules are the pages' rules, because both call the same
services. Every write is idempotent by the client's request_key: the first time 201 (a new
case or payment) or 200 (a step), a repeat of the same key by the same user 200 with the
same result and no new event, the key reused for another case, step, house or user 409. A
repeat is authorized as a first request is. A refused step answers with the service's
reason: 400 not possible (evidence, notice period, input), 403 not your role or kept from
you by separation of duties, 409 the case is not in a state this step starts from (e.g.
another official approved it a moment ago). Out of the user's regions is 404.
"""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.schema import BAD_QUERY, NOT_FOUND, ErrorDetailSerializer
from housing.selectors import household_get
from inspections.selectors import inspection_get_by_client_uuid
from renovation.models import RenovationCase
from renovation.selectors import (
    CaseFilters,
    available_actions,
    case_evidence,
    case_get,
    case_list,
    case_payments_attach,
    case_timeline,
    completion_choices,
)
from renovation.serializers import (
    CaseActInputSerializer,
    CaseDetailSerializer,
    CaseOpenInputSerializer,
    CasePayInputSerializer,
    CasePaymentSerializer,
    CaseQuery,
    CaseSerializer,
)
from renovation.services import case_act, case_open, case_pay

CASE_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
REFUSED = OpenApiResponse(
    ErrorDetailSerializer,
    description=_("Not possible: the reason says why (evidence missing, input wrong, ...)."),
)
FORBIDDEN = OpenApiResponse(
    ErrorDetailSerializer,
    description=_(
        "Your role may not take this step, or separation of duties keeps you from it (you "
        "opened the case, made the completion appraisal or passed the completion check)."
    ),
)
CONFLICT = OpenApiResponse(
    ErrorDetailSerializer,
    description=_(
        "The case is not in a state this step starts from (someone else changed it first), "
        "or the request key was already used for another case, step, house or user."
    ),
)


def _offer_visits(step: dict, choices) -> None:
    """The completion check offers what the case page offers (renovation.views): each
    usable visit, the default first, with every flag to acknowledge when the check is
    judged on it (those every visit shares, then its own photos'), and the unusable ones
    with why."""
    shared = [{"check": check, "shared": True} for check in choices.shared]
    step["visits"] = [
        {
            "inspection": choice.inspection,
            "default": index == 0,
            "flags": shared + [{"check": check, "shared": False} for check in choice.flags],
        }
        for index, choice in enumerate(choices.usable)
    ]
    step["unusable_visits"] = [
        {"inspection": choice.inspection, "reason": choice.problem} for choice in choices.unusable
    ]


@extend_schema_view(
    list=extend_schema(
        summary=_("Renovation cases"),
        description=_("The cases in your regions, newest first, filtered."),
        parameters=[CaseQuery],
        responses={200: CaseSerializer(many=True), 400: BAD_QUERY},
    ),
    retrieve=extend_schema(
        summary=_("One renovation case"),
        description=_(
            "With its timeline (every event: when, who, from → to, reason, payments), its "
            "evidence checklist and the steps you may take now."
        ),
        parameters=[CASE_ID],
        responses={200: CaseDetailSerializer, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary=_("Open a renovation case"),
        description=_(
            "For a household's current house, graded C or D by its latest appraisal. The "
            "method must fit the grade, the planned floor area the area rule; the subsidy is "
            "the year's standard unless an amount is given with a reason. Idempotent by "
            "request_key: 201 the first time, 200 with the same case for a repeat."
        ),
        request=CaseOpenInputSerializer,
        responses={
            201: CaseDetailSerializer,
            200: CaseDetailSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            409: CONFLICT,
        },
    ),
)
class CaseViewSet(viewsets.GenericViewSet):
    queryset = RenovationCase.objects.none()  # for the router and the schema; rows from selectors
    serializer_class = CaseSerializer
    lookup_value_regex = r"\d+"

    def _detail(self, case: RenovationCase, *, status_code=status.HTTP_200_OK) -> Response:
        """The case's full answer, from a case loaded by case_get or returned by a service
        (both join what the answer shows)."""
        case_payments_attach(case)
        actions = available_actions(user=self.request.user, case=case)
        for step in actions:
            if step["action"] == "pass_completion" and step["allowed"]:
                _offer_visits(step, completion_choices(user=self.request.user, case=case))
        context = {
            **self.get_serializer_context(),
            "timeline": case_timeline(case=case),
            "evidence": case_evidence(case=case, just_loaded=True),
            "actions": actions,
        }
        return Response(CaseDetailSerializer(case, context=context).data, status=status_code)

    def list(self, request):
        query = CaseQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        filters = CaseFilters(
            state=params.get("state", ""),
            township=params.get("township", ""),
            funding_year=params.get("funding_year"),
            overdue=params.get("overdue", False),
        )
        page = self.paginate_queryset(case_list(user=request.user, filters=filters))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return self._detail(case_get(user=request.user, pk=int(pk)))

    def create(self, request):
        data = CaseOpenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        try:
            household = household_get(user=request.user, pk=body["household"])
        except Http404:
            raise ValidationError(
                {"household": [_("No household %(id)s among yours.") % {"id": body["household"]}]}
            ) from None
        house = household.current_house
        if house is None:
            raise ValidationError({"household": [_("This household has no current house.")]})
        case, created = case_open(
            user=request.user,
            house=house,
            method=body["method"],
            build_mode=body["build_mode"],
            planned_floor_area=body["planned_floor_area"],
            funding_year=body["funding_year"],
            batch=body["batch"],
            subsidy_amount=body["subsidy_amount"],
            subsidy_override_reason=body["subsidy_override_reason"],
            request_key=body["request_key"],
        )
        return self._detail(
            case_get(user=request.user, pk=case.pk),
            status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary=_("Take a step of the chain"),
        description=_(
            "village_review, notice, township_check, county_approve, start_works, "
            "finish_works, pass_completion, fail_completion (reason = the fixes required), "
            "reject or withdraw (with a reason). Every step needs your review opinion and "
            "confirm=true; a step that relies on flagged photos needs an acknowledgement, "
            "with a reason, of each flag not yet acknowledged (available_actions[].flags). "
            "pass_completion is judged on the visit sent as inspection (one of "
            "available_actions[].visits), else on the default one: acknowledge the flags "
            "that visit lists. "
            "Answers the case as it is after the step. Idempotent by request_key: a repeat "
            "answers 200 with the case and writes nothing."
        ),
        parameters=[CASE_ID],
        request=CaseActInputSerializer,
        responses={
            200: CaseDetailSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"], url_path="act", url_name="act")
    def act(self, request, pk=None):
        data = CaseActInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        inspection = None
        if body["inspection"] is not None:
            try:
                inspection = inspection_get_by_client_uuid(
                    user=request.user, client_uuid=body["inspection"]
                )
            except Http404:
                raise ValidationError(
                    {"inspection": [_("No inspection with this client UUID among yours.")]}
                ) from None
        case = case_act(
            user=request.user,
            case_id=int(pk),
            action=body["action"],
            reason=body["reason"],
            opinion=body["opinion"],
            confirm=body["confirm"],
            acknowledgements=body["acknowledgements"],
            inspection=inspection,
            request_key=body["request_key"],
        )
        return self._detail(case)

    @extend_schema(
        summary=_("Record a payment"),
        description=_(
            "After the completion check passed, with your review opinion and confirm=true. "
            "The total paid never exceeds the subsidy; "
            "the case is paid when it reaches it. Idempotent by request_key: 201 the first "
            "time, 200 with the same payment for a repeat."
        ),
        parameters=[CASE_ID],
        request=CasePayInputSerializer,
        responses={
            201: CasePaymentSerializer,
            200: CasePaymentSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"], url_path="payments", url_name="pay")
    def payments(self, request, pk=None):
        data = CasePayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        payment, created = case_pay(
            user=request.user,
            case_id=int(pk),
            amount=body["amount"],
            paid_on=body["paid_on"],
            reference=body["reference"],
            opinion=body["opinion"],
            confirm=body["confirm"],
            request_key=body["request_key"],
        )
        return Response(
            CasePaymentSerializer(payment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
