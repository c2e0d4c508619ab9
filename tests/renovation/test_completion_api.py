"""The completion check's visit, over the API and in the service.

A completion visit made before the case's entry appraisal (left from an earlier
renovation, say) is no check of the case's works: the page no longer offers it, and the
service refuses it when it is sent all the same (a form post, the API). The API's case
answers what the page shows: for an allowed pass_completion, the usable visits (the
default first), each with every flag to acknowledge when the check is judged on it, and
the visits the check cannot pass on, each with why.
"""

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.serializers import DateTimeField
from rest_framework.test import APIClient

from accounts.models import Role
from renovation.errors import CaseRefused
from renovation.evidence import flag_label
from renovation.models import CaseEvent, CaseEventKind, CaseState, RenovationCase
from renovation.services import case_act
from tests.factories import UserFactory, make_region
from tests.renovation.factories import CONFIRMED
from tests.renovation.test_case_pages import text
from tests.renovation.test_completion_visit import PASS_STEP, Visits, acknowledged, codes

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def detail(case) -> str:
    return f"/api/cases/{case.pk}/"


def act(case) -> str:
    return f"/api/cases/{case.pk}/act/"


def local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def before_entry_refusal(v: Visits) -> str:
    return (
        f"The completion visit of {local(v.before_entry.started_at)} by "
        f"{v.team['inspector2'].username} was made before this case's entry appraisal "
        f"({local(v.case.entry_appraisal.inspection.started_at)}), so it cannot check this "
        "case's works (it may be from an earlier renovation); choose a completion visit made "
        "after the entry appraisal."
    )


def _acks(*photos) -> list[dict]:
    return [
        {"photo": str(p.key), "flag": code, "reason": "Seen on site."}
        for p in photos
        for code in codes(p)
    ]


def expected_flags(photo, *, shared: bool) -> list[dict]:
    """A photo's flags as the API lists them for a visit, one per code."""
    photo.refresh_from_db()
    return [
        {
            "photo": str(photo.key),
            "flag": code,
            "label": flag_label(code),
            "detail": " ".join(f["detail"] for f in photo.flags if f["code"] == code),
            "shared": shared,
        }
        for code in codes(photo)
    ]


def pass_action(body) -> dict:
    [action] = [a for a in body["available_actions"] if a["action"] == PASS_STEP]
    return action


def visit_summary(visit, grade: str) -> dict:
    inspector = visit.inspector
    return {
        "id": visit.pk,
        "inspection": str(visit.client_uuid),
        "started_at": DateTimeField().to_representation(visit.started_at),
        "inspector": {
            "id": inspector.pk,
            "username": inspector.username,
            "name": inspector.get_full_name(),
        },
        "grade": grade,
    }


# ---------------------------------------------------------------------------------------
# A visit made before the entry appraisal


def test_the_service_refuses_a_completion_visit_made_before_the_entry_appraisal():
    v = Visits()
    township = v.team["township"]
    args = {"user": township, "case_id": v.case.pk, "action": PASS_STEP, **CONFIRMED}
    events = CaseEvent.objects.filter(case=v.case).count()

    # Graded A by another inspector and without a flagged photo of its own: only its time
    # keeps it from being the check of this case's works.
    with pytest.raises(CaseRefused) as refused:
        case_act(**args, inspection=v.before_entry, acknowledgements=_acks(v.shared))
    assert str(refused.value.message) == before_entry_refusal(v)
    assert CaseEvent.objects.filter(case=v.case).count() == events
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED

    # The visits made after it still pass.
    done = case_act(**args, inspection=v.older, acknowledgements=_acks(v.shared, v.older_own))
    assert (done.state, done.completion_inspection_id) == (CaseState.COMPLETION_PASSED, v.older.pk)


def test_a_form_post_naming_a_visit_made_before_the_entry_appraisal_is_refused(client):
    v = Visits()
    client.force_login(v.team["township"])
    response = client.post(
        reverse("cases:case_act", args=[v.case.pk]),
        {
            **CONFIRMED,
            "action": PASS_STEP,
            "inspection": str(v.before_entry.pk),
            "ack_photo": [a["photo"] for a in _acks(v.shared)],
            "ack_flag": [a["flag"] for a in _acks(v.shared)],
            "ack_reason": [a["reason"] for a in _acks(v.shared)],
        },
    )
    assert response.status_code == 400
    assert before_entry_refusal(v) in text(response)
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED
    assert acknowledged(v.case) == set()


def test_the_api_refuses_a_completion_visit_made_before_the_entry_appraisal():
    v = Visits()
    response = api(v.team["township"]).post(
        act(v.case),
        {
            **CONFIRMED,
            "action": PASS_STEP,
            "inspection": str(v.before_entry.client_uuid),
            "acknowledgements": _acks(v.shared),
            "request_key": "before-entry-1",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"detail": before_entry_refusal(v)}
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED
    assert acknowledged(v.case) == set()


# ---------------------------------------------------------------------------------------
# The visits the API offers


def test_the_case_lists_each_usable_visit_with_its_flags_and_the_unusable_with_why():
    v = Visits()
    body = api(v.team["township"]).get(detail(v.case)).json()
    action = pass_action(body)
    shared = expected_flags(v.shared, shared=True)

    assert action["allowed"] is True
    # The default visit's flags, as before: what a client sending no visit acknowledges.
    assert action["flags"] == [
        {k: f[k] for k in ("photo", "flag", "label", "detail")}
        for f in shared + expected_flags(v.newest_own, shared=False)
    ]
    # Only the visits made after the entry appraisal, with an appraisal: not before_entry,
    # not unappraised.
    assert action["visits"] == [
        {
            **visit_summary(v.newest, "A"),
            "default": True,
            "flags": shared + expected_flags(v.newest_own, shared=False),
        },
        {
            **visit_summary(v.older, "B"),
            "default": False,
            "flags": shared + expected_flags(v.older_own, shared=False),
        },
    ]
    assert action["unusable_visits"] == [
        {
            **visit_summary(v.graded_c, "C"),
            "reason": (
                f"The completion appraisal of {timezone.localdate(v.graded_c.started_at)} "
                "grades the house C; it must be A or B to pass (fail the check with the fixes "
                "required instead)."
            ),
        }
    ]
    # The other steps carry no visits.
    others = [a for a in body["available_actions"] if a["action"] != PASS_STEP]
    assert others and all("visits" not in a and "unusable_visits" not in a for a in others)


def test_over_the_api_the_check_passes_on_a_chosen_visit_with_its_flags_as_listed():
    v = Visits()
    client = api(v.team["township"])
    [default, older] = pass_action(client.get(detail(v.case)).json())["visits"]
    assert (default["id"], older["id"]) == (v.newest.pk, v.older.pk)
    request = {
        **CONFIRMED,
        "action": PASS_STEP,
        "inspection": older["inspection"],
        "request_key": "older-visit-1",
    }

    # The default visit's flags (available_actions[].flags) are not the older visit's.
    default_flags = pass_action(client.get(detail(v.case)).json())["flags"]
    refused = client.post(
        act(v.case),
        {
            **request,
            "acknowledgements": [
                {"photo": f["photo"], "flag": f["flag"], "reason": "Seen."} for f in default_flags
            ],
        },
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith(f"Photo {v.newest_own.key} has no flag")
    assert acknowledged(v.case) == set()

    response = client.post(
        act(v.case),
        {
            **request,
            "request_key": "older-visit-2",
            "acknowledgements": [
                {"photo": f["photo"], "flag": f["flag"], "reason": "Seen on site."}
                for f in older["flags"]
            ],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["state"], body["completion_inspection"]) == (
        CaseState.COMPLETION_PASSED,
        str(v.older.client_uuid),
    )
    assert all("visits" not in a for a in body["available_actions"])
    assert acknowledged(v.case) == {
        (str(p.key), code) for p in (v.shared, v.older_own) for code in codes(p)
    }
    event = v.case.events.get(kind=CaseEventKind.TRANSITION, to_state=CaseState.COMPLETION_PASSED)
    assert (event.actor_id, event.data["completion_inspection"], event.data["grade"]) == (
        v.team["township"].pk,
        v.older.pk,
        "B",
    )


def test_the_visits_are_only_for_those_who_may_pass_the_check_in_the_region():
    v = Visits()
    elsewhere = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399101")])
    assert api(elsewhere).get(detail(v.case)).status_code == 404

    # The works' inspector may not pass the check: the step is named, no visit listed.
    body = api(v.team["inspector"]).get(detail(v.case)).json()
    actions = {a["action"]: a for a in body["available_actions"]}
    assert actions[PASS_STEP]["allowed"] is False
    assert "visits" not in actions[PASS_STEP]
    assert "unusable_visits" not in actions[PASS_STEP]
    refused = api(v.team["inspector"]).post(
        act(v.case),
        {
            **CONFIRMED,
            "action": PASS_STEP,
            "inspection": str(v.older.client_uuid),
            "request_key": "inspector-1",
        },
        format="json",
    )
    assert refused.status_code == 403
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED


def test_the_schema_validates_and_documents_the_visits_to_choose(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    schema = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]

    action = schema["CaseAction"]
    assert set(action["properties"]) == {
        "action",
        "label",
        "allowed",
        "reason",
        "flags",
        "visits",
        "unusable_visits",
    }
    assert set(action["required"]) == {"action", "label", "allowed", "reason", "flags"}
    assert action["properties"]["visits"]["items"] == {"$ref": "#/components/schemas/UsableVisit"}
    assert action["properties"]["unusable_visits"]["items"] == {
        "$ref": "#/components/schemas/UnusableVisit"
    }
    summary = {"id", "inspection", "started_at", "inspector", "grade"}
    assert set(schema["UsableVisit"]["required"]) == summary | {"default", "flags"}
    assert set(schema["UnusableVisit"]["required"]) == summary | {"reason"}
    assert schema["UsableVisit"]["properties"]["flags"]["items"] == {
        "$ref": "#/components/schemas/VisitFlag"
    }
    assert set(schema["VisitFlag"]["required"]) == {"photo", "flag", "label", "detail", "shared"}
    assert "whichever visit" in schema["VisitFlag"]["properties"]["shared"]["description"]
    assert (
        "made before the entry appraisal is refused"
        in (schema["CaseActInput"]["properties"]["inspection"]["description"])
    )


def test_a_failed_check_may_not_name_a_visit_made_before_the_entry_appraisal():
    v = Visits()
    township = v.team["township"]
    args = {
        "user": township,
        "case_id": v.case.pk,
        "action": "fail_completion",
        "reason": "Roof tiles missing on the north side.",
        **CONFIRMED,
    }
    events = CaseEvent.objects.filter(case=v.case).count()
    with pytest.raises(CaseRefused) as refused:
        case_act(**args, inspection=v.before_entry)
    assert str(refused.value.message) == before_entry_refusal(v)
    assert CaseEvent.objects.filter(case=v.case).count() == events
    failed = case_act(**args, inspection=v.older)
    assert failed.state == CaseState.WORKS_STARTED
