"""Validation of the case pages' input. Forms here never save anything: services do."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from housing.bounds import parse_id, validate_past_date
from renovation.models import FUNDING_YEAR_MAX, FUNDING_YEAR_MIN, CaseState
from renovation.selectors import CaseFilters, township_list

# More cases than this in one batch is refused: a batch is a reviewed list, not "everything".
MAX_BATCH = 200


def opinion_field():
    return forms.CharField(
        label=_("Opinion"),
        required=False,  # the service refuses an empty one, with the step's name
        max_length=2000,
        help_text=_("Your review opinion, recorded with the step in your name."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def confirm_field():
    return forms.BooleanField(
        label=_("I confirm that I have checked this case and take this step in my own name."),
        required=False,  # the service refuses without it, with the step's name
    )


def new_request_key() -> str:
    """A fresh key for one form: submitting it twice (a double tap) is one request."""
    return uuid.uuid4().hex


class RequestKeyField(forms.CharField):
    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=64, **kwargs)


class CaseFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[("", _("Any state")), *CaseState.choices]
    )
    township = forms.ChoiceField(label=_("Township"), required=False)
    funding_year = forms.IntegerField(
        label=_("Funding year"),
        required=False,
        min_value=FUNDING_YEAR_MIN,
        max_value=FUNDING_YEAR_MAX,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": "2026"}),
    )
    overdue = forms.BooleanField(
        label=_("Payment overdue"),
        required=False,
        help_text=_("Completion check passed, not paid in full after the payment deadline."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        townships = township_list(user=user).only("code", "name")
        self.fields["township"].choices = [
            ("", _("All my townships")),
            *((t.code, f"{t.name} ({t.code})") for t in townships),
        ]

    def filters(self) -> CaseFilters:
        """The selector's filters from valid data (call after is_valid())."""
        data = self.cleaned_data
        return CaseFilters(
            state=data.get("state") or "",
            township=data.get("township") or "",
            funding_year=data.get("funding_year"),
            overdue=bool(data.get("overdue")),
        )


class CaseActForm(forms.Form):
    """One step of the chain on one case. Whether it is allowed is the service's to say."""

    action = forms.CharField(max_length=40)
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    opinion = opinion_field()
    confirm = confirm_field()
    inspection = forms.ModelChoiceField(
        label=_("Completion check"),
        required=False,
        queryset=None,
        error_messages={
            "invalid_choice": _("Choose one of this house's completion checks."),
        },
    )
    request_key = RequestKeyField()

    def __init__(self, *args, inspections, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["inspection"].queryset = inspections

    def acknowledgements(self) -> list[dict]:
        """The flags acknowledged on the form: one (ack_photo, ack_flag, ack_reason) triple
        per flagged photo's flag, as the page lists them; the service judges them."""
        if not self.is_bound:
            return []
        photos, flags = self.data.getlist("ack_photo"), self.data.getlist("ack_flag")
        reasons = self.data.getlist("ack_reason")
        return [
            {"photo": photo, "flag": flag, "reason": reason[:2000]}
            for photo, flag, reason in zip(photos, flags, reasons, strict=False)
        ]


class CasePayForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount (yuan)"),
        max_digits=10,
        decimal_places=2,
        min_value=0.01,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    paid_on = forms.DateField(
        label=_("Paid on"),
        validators=[validate_past_date],  # not before 1900, not after today
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    reference = forms.CharField(
        label=_("Reference"), max_length=60, help_text=_("The bank or treasury reference.")
    )
    opinion = opinion_field()
    confirm = confirm_field()
    request_key = RequestKeyField()


class CaseIdsField(forms.Field):
    """The ids of the cases ticked on the list."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": _("Tick at least one case."),
        "invalid": _("“%(value)s” is not a case number."),
        "too_many": _("At most %(max)s cases at a time; you ticked %(count)s."),
    }

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        ids = []
        for item in value:
            text = str(item).strip()
            # ASCII digits within 1..2^63-1: "²" passes isdigit() but not int(), and a
            # larger number overflows the database's integers.
            pk = parse_id(text)
            if pk is None:
                raise forms.ValidationError(
                    self.error_messages["invalid"], code="invalid", params={"value": text}
                )
            if pk not in ids:
                ids.append(pk)
        if len(ids) > MAX_BATCH:
            raise forms.ValidationError(
                self.error_messages["too_many"],
                code="too_many",
                params={"max": MAX_BATCH, "count": len(ids)},
            )
        return ids


class CaseBatchForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"))
    cases = CaseIdsField()
    # One opinion and one confirmation for the whole batch (recorded on each case's event).
    opinion = opinion_field()
    confirm = confirm_field()
    request_key = RequestKeyField()
    # The list's query string, to go back to the same filters and page afterwards.
    query = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args, actions: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = actions
