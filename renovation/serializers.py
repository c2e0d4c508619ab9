"""How renovation cases look in the API. Validation of input only: they never save.

Input serializers check types and choices and name the wrong field; the rules of the
chain (who, from which state, with what evidence) are the case services' alone, which
answer with a reason (inspections.errors).
"""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from housing.bounds import IdField, validate_past_date
from inspections.serializers import (
    ChoiceSetField,
    InspectorSerializer,
    SlotSerializer,
    _absolute,
    grade_field,
)
from renovation.models import (
    FUNDING_YEAR_MAX,
    FUNDING_YEAR_MIN,
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    Payment,
    RenovationCase,
    RenovationMethod,
)
from renovation.rules import is_overdue
from renovation.workflow import STEPS

STEP_CHOICES = [(name, step.label) for name, step in STEPS.items() if name != "pay"]


def state_field(**kwargs):
    return ChoiceSetField(enum_name="CaseStateEnum", choices=CaseState.choices, **kwargs)


def method_field(**kwargs):
    return ChoiceSetField(
        enum_name="RenovationMethodEnum", choices=RenovationMethod.choices, **kwargs
    )


def build_mode_field(**kwargs):
    return ChoiceSetField(enum_name="BuildModeEnum", choices=BuildMode.choices, **kwargs)


def request_key_field():
    return serializers.CharField(
        max_length=64,
        help_text=_(
            "Made by the client, e.g. a UUID; send the same one again when repeating this "
            "request. A repeat answers 200 with the same result and writes nothing."
        ),
    )


def opinion_input_field():
    return serializers.CharField(
        max_length=2000,
        allow_blank=True,  # the service refuses an empty opinion, naming the step
        help_text=_(
            "Your review opinion (审核意见) on the step, recorded on its event in your name. "
            "Required, not empty."
        ),
    )


def confirm_input_field():
    return serializers.BooleanField(
        help_text=_(
            "Must be true: you confirm that you have checked the case and take the step in "
            "your own name (the page's “I confirm” box). false is refused."
        ),
    )


# --- input ------------------------------------------------------------------------------


class CaseQuery(serializers.Serializer):
    state = state_field(required=False, help_text=_("Only cases in this state."))
    township = serializers.RegexField(
        r"^\d{2,12}$",
        required=False,
        help_text=_("A region code (a township's, usually): only the cases under it."),
        error_messages={"invalid": _("A region code has 2 to 12 digits.")},
    )
    funding_year = serializers.IntegerField(
        required=False,
        min_value=FUNDING_YEAR_MIN,
        max_value=FUNDING_YEAR_MAX,
        help_text=_("Only this funding year."),
    )
    overdue = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("Only cases whose completion check passed and whose payment is overdue."),
    )


class CaseOpenInputSerializer(serializers.Serializer):
    """POST /api/cases/: open a case for a household's current house."""

    household = IdField(help_text=_("The household's id; the case is for its current house."))
    method = method_field(help_text=_("Repair for a house graded C; a rebuild for D."))
    build_mode = build_mode_field()
    planned_floor_area = serializers.DecimalField(
        max_digits=7, decimal_places=2, help_text=_("m², within the area rule.")
    )
    funding_year = serializers.IntegerField(
        min_value=FUNDING_YEAR_MIN, max_value=FUNDING_YEAR_MAX
    )  # the model's range, so the schema says it
    batch = serializers.CharField(required=False, allow_blank=True, default="", max_length=40)
    subsidy_amount = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Only to differ from the standard; then subsidy_override_reason is required."),
    )
    subsidy_override_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000
    )
    request_key = request_key_field()


class AcknowledgementInputSerializer(serializers.Serializer):
    photo = serializers.UUIDField(help_text=_("The flagged photo's key."))
    flag = serializers.CharField(
        max_length=40, help_text=_("The flag's code, e.g. far_from_house (see the evidence).")
    )
    reason = serializers.CharField(
        max_length=2000,
        allow_blank=True,  # the service refuses an empty reason, naming the flag
        help_text=_("Why the photo is acceptable as it is. Required, not empty."),
    )


class CaseActInputSerializer(serializers.Serializer):
    """POST /api/cases/<id>/act/: one step of the chain."""

    action = ChoiceSetField(enum_name="CaseActionEnum", choices=STEP_CHOICES)
    opinion = opinion_input_field()
    confirm = confirm_input_field()
    acknowledgements = serializers.ListField(
        child=AcknowledgementInputSerializer(),
        required=False,
        default=list,
        max_length=200,
        help_text=_(
            "For a step that relies on flagged photos (county_approve: the entry appraisal's "
            "photos; start_works: the before-photos; finish_works: the after-photos; "
            "pass_completion: the after-photos and the completion visit's): each flag not "
            "acknowledged yet on this case (available_actions[].flags), with the reason you "
            "accept it. Each is recorded as an event of the case's chain, by you; a flag "
            "acknowledged once stays acknowledged. The step is refused while any is missing."
        ),
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text=_(
            "Required to reject, to withdraw and to fail the completion check (the fixes)."
        ),
    )
    inspection = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_(
            "For the completion check: the client UUID of the completion visit to judge, "
            "one of available_actions[].visits (default: the house's latest one with an "
            "appraisal made after the case's entry appraisal). A visit made before the entry "
            "appraisal is refused."
        ),
    )
    request_key = request_key_field()


class CasePayInputSerializer(serializers.Serializer):
    """POST /api/cases/<id>/payments/: one payment of the subsidy."""

    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text=_("Yuan; the total never exceeds the subsidy.")
    )
    paid_on = serializers.DateField(
        validators=[validate_past_date],
        help_text=_("The date it was paid, e.g. 2026-12-01: not before 1900, not in the future."),
    )
    reference = serializers.CharField(max_length=60, help_text=_("The bank or treasury reference."))
    opinion = opinion_input_field()
    confirm = confirm_input_field()
    request_key = request_key_field()


# --- output -----------------------------------------------------------------------------


class CaseHouseholdSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    archive_no = serializers.CharField()
    head_name = serializers.CharField()
    village_code = serializers.CharField(source="village.code")
    village_name = serializers.CharField(source="village.name")


class CasePaymentSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    recorded_by = InspectorSerializer(read_only=True)

    class Meta:
        model = Payment
        fields = ["id", "case", "amount", "paid_on", "reference", "recorded_by", "created_at"]
        read_only_fields = fields


class CaseEventSerializer(serializers.ModelSerializer):
    kind = ChoiceSetField(enum_name="CaseEventKindEnum", choices=CaseEventKind.choices)
    from_state = serializers.CharField(
        help_text=_("The state before (a CaseStateEnum value); empty for the opening.")
    )
    to_state = state_field()
    actor = InspectorSerializer(read_only=True)
    data = serializers.DictField(
        help_text=_(
            "The step's particulars: “step”, “opinion” and “confirmed”, and e.g. amount, "
            "paid_on and reference for a payment, the completion visit and its grade for a "
            "passed check; for an acknowledgement, “photo”, “flag”, “reason” and “for_step”."
        )
    )
    opinion = serializers.SerializerMethodField(
        help_text=_("The review opinion recorded with the step; empty for other events.")
    )

    class Meta:
        model = CaseEvent
        fields = [
            "id",
            "kind",
            "from_state",
            "to_state",
            "actor",
            "at",
            "reason",
            "opinion",
            "data",
            "hash",
        ]
        read_only_fields = fields

    def get_opinion(self, event) -> str:
        return str((event.data or {}).get("opinion", ""))


class FlagCheckSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("The flag's code (what an acknowledgement names)."))
    label = serializers.CharField()
    detail = serializers.CharField()
    acknowledged = serializers.BooleanField()
    acknowledged_by = serializers.SerializerMethodField()
    acknowledged_at = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField(help_text=_("Why it was accepted."))

    @extend_schema_field(InspectorSerializer(allow_null=True))
    def get_acknowledged_by(self, check):
        ack = check.acknowledgement
        return None if ack is None else InspectorSerializer(ack.actor).data

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_acknowledged_at(self, check):
        ack = check.acknowledgement
        return None if ack is None else serializers.DateTimeField().to_representation(ack.at)

    @extend_schema_field(serializers.CharField())
    def get_reason(self, check):
        ack = check.acknowledgement
        return "" if ack is None else str(ack.data.get("reason", ""))


class FlaggedPhotoSerializer(serializers.Serializer):
    photo = serializers.UUIDField(source="photo.key", help_text=_("The photo's key."))
    stage = serializers.CharField(source="photo.stage")
    angle = serializers.CharField(source="photo.angle")
    flags = FlagCheckSerializer(many=True)


class PendingFlagSerializer(serializers.Serializer):
    photo = serializers.UUIDField(source="key", help_text=_("The photo's key."))
    flag = serializers.CharField(source="code")
    label = serializers.CharField()
    detail = serializers.CharField()


class CaseSlotChecksSerializer(serializers.Serializer):
    present = SlotSerializer(many=True)
    missing = SlotSerializer(many=True)
    due = serializers.BooleanField(
        help_text=_("False while these photos are not due yet (after-photos before the works).")
    )
    flagged = FlaggedPhotoSerializer(
        many=True, help_text=_("The photos with evidence flags, each flag's acknowledgement.")
    )


class CaseCompletionEvidenceSerializer(serializers.Serializer):
    inspection = serializers.SerializerMethodField(
        help_text=_("The completion visit's client UUID, or null when there is none yet.")
    )
    grade = grade_field(allow_null=True)
    inspector = InspectorSerializer(allow_null=True)
    works_inspector = InspectorSerializer(allow_null=True)
    different_person = serializers.BooleanField(
        allow_null=True,
        help_text=_("Made by someone other than the works' inspector; null before the works."),
    )
    acceptable = serializers.BooleanField(help_text=_("Graded A or B, by another inspector."))
    flagged = FlaggedPhotoSerializer(
        many=True, help_text=_("The completion visit's other photos with evidence flags.")
    )

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_inspection(self, completion):
        visit = completion["inspection"]
        return None if visit is None else str(visit.client_uuid)


class CaseEvidenceSerializer(serializers.Serializer):
    before = CaseSlotChecksSerializer(help_text=_("Before-photos of the safety appraisal's slots."))
    after = CaseSlotChecksSerializer(help_text=_("After-photos of the completion check's slots."))
    completion = CaseCompletionEvidenceSerializer()


class VisitFlagSerializer(serializers.Serializer):
    photo = serializers.UUIDField(source="check.key", help_text=_("The photo's key."))
    flag = serializers.CharField(source="check.code")
    label = serializers.CharField(source="check.label")
    detail = serializers.CharField(source="check.detail")
    shared = serializers.BooleanField(
        help_text=_(
            "True for a flag of an after-photo of a required slot, which the check relies on "
            "whichever visit it is judged on; false for a flag of this visit's own photos."
        )
    )


class CompletionVisitSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="inspection.pk", help_text=_("The visit's id."))
    inspection = serializers.UUIDField(
        source="inspection.client_uuid",
        help_text=_("The visit's client UUID: what the step's “inspection” takes."),
    )
    started_at = serializers.DateTimeField(source="inspection.started_at")
    inspector = InspectorSerializer(source="inspection.inspector")
    grade = grade_field(source="inspection.appraisal.grade")


class UsableVisitSerializer(CompletionVisitSerializer):
    default = serializers.BooleanField(
        help_text=_("The visit the check is judged on when no “inspection” is sent.")
    )
    flags = VisitFlagSerializer(
        many=True,
        help_text=_(
            "Every flag not acknowledged yet that the check relies on when judged on this "
            "visit: send an acknowledgement for each with the step and this visit's "
            "“inspection”."
        ),
    )


class UnusableVisitSerializer(CompletionVisitSerializer):
    reason = serializers.CharField(help_text=_("Why the check cannot pass on this visit."))


class CaseActionSerializer(serializers.Serializer):
    action = serializers.CharField(help_text=_("A CaseActionEnum value, or “pay”."))
    label = serializers.CharField()
    allowed = serializers.BooleanField()
    reason = serializers.CharField(help_text=_("Why not, when not allowed; else empty."))
    flags = PendingFlagSerializer(
        many=True,
        help_text=_(
            "The evidence flags the step relies on that are not acknowledged yet: send an "
            "acknowledgement for each with the step. For pass_completion, those of the "
            "default visit; to judge another, see visits."
        ),
    )
    # Only on an allowed pass_completion (absent keys are skipped: not required fields).
    visits = UsableVisitSerializer(
        many=True,
        required=False,
        help_text=_(
            "pass_completion only, when allowed: the completion visits made after the case's "
            "entry appraisal that the check can pass on, the default first, each with the "
            "flags to acknowledge when the check is judged on it."
        ),
    )
    unusable_visits = UnusableVisitSerializer(
        many=True,
        required=False,
        help_text=_(
            "pass_completion only, when allowed: the completion visits with an appraisal, made "
            "after the case's entry appraisal, that the check cannot pass on, each with why."
        ),
    )


class CaseSerializer(serializers.ModelSerializer):
    household = CaseHouseholdSerializer(source="house.household", read_only=True)
    state = state_field(read_only=True)
    method = method_field(read_only=True)
    build_mode = build_mode_field(read_only=True)
    entry_grade = grade_field(read_only=True)
    overdue = serializers.SerializerMethodField(
        help_text=_("Completion check passed and the payment deadline is past.")
    )
    url = serializers.SerializerMethodField(help_text=_("The case's page."))

    class Meta:
        model = RenovationCase
        fields = [
            "id",
            "state",
            "household",
            "house",
            "entry_grade",
            "method",
            "build_mode",
            "household_size",
            "planned_floor_area",
            "subsidy_amount",
            "subsidy_override_reason",
            "paid_total",
            "funding_year",
            "batch",
            "overdue",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_overdue(self, case):
        return is_overdue(case)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, case):
        return _absolute(self.context, reverse("cases:case_detail", kwargs={"pk": case.pk}))


class CaseDetailSerializer(CaseSerializer):
    """A case with its timeline, evidence checklist and the steps the caller may take now.

    Needs `timeline`, `evidence` and `actions` in the context (from the selectors and
    services).
    """

    works_inspector = InspectorSerializer(read_only=True, allow_null=True)
    completion_inspection = serializers.SerializerMethodField(
        help_text=_("The completion visit's client UUID, once the check passed.")
    )
    payments = CasePaymentSerializer(many=True, read_only=True)
    timeline = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    available_actions = serializers.SerializerMethodField(
        help_text=_(
            "The steps from the case's state: allowed ones the caller may take now, others "
            "with the reason they are not possible."
        )
    )

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "notice_started_at",
            "works_inspector",
            "completion_inspection",
            "completion_passed_at",
            "closing_reason",
            "payments",
            "timeline",
            "evidence",
            "available_actions",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_completion_inspection(self, case):
        visit = case.completion_inspection
        return None if visit is None else str(visit.client_uuid)

    @extend_schema_field(CaseEventSerializer(many=True))
    def get_timeline(self, case):
        return CaseEventSerializer(self.context["timeline"], many=True).data

    @extend_schema_field(CaseEvidenceSerializer)
    def get_evidence(self, case):
        return CaseEvidenceSerializer(self.context["evidence"]).data

    @extend_schema_field(CaseActionSerializer(many=True))
    def get_available_actions(self, case):
        return CaseActionSerializer(self.context["actions"], many=True).data
