"""The field page (/field/): an inspector's phone, one bar of signal or none.

The page is one HTML document plus our own CSS and JS. Everything the JavaScript needs is
rendered into the page as JSON (translated strings, the active grade rule, the choices, the
photo slots), so that once a service worker has cached the page it works with no network.
Records wait in the phone's IndexedDB and are sent to the API (/api/inspections/...) when
the network returns; the API is idempotent by client UUID, so a replay is harmless.
"""

import hashlib
import json

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from housing.models import SafetyGrade
from inspections.grading import active_rule
from inspections.models import (
    MEMBERS,
    InspectionKind,
    MemberRating,
    PhotoAngle,
    PhotoStage,
    SiteHazard,
)
from inspections.permissions import can_use_field_page
from inspections.selectors import photo_slot_list

# Our own files the page needs offline, precached by the service worker. Each one's content
# goes into the worker's version, so that changing any of them installs a new worker.
FIELD_STATIC = [
    "css/anju.css",
    "field/field.css",
    "field/common.js",
    "field/queue.js",
    "field/villages.js",
    "field/field.js",
    "field/icon-192.png",
    "field/icon-512.png",
]


def _strings() -> dict[str, str]:
    """Every sentence field.js shows, translated now (the JS never builds a sentence)."""
    return {
        "searching": _("Searching…"),
        "locating": _("Finding where you are…"),
        "no_results": _("No household matches."),
        "no_nearby": _("No household of your regions is recorded near here."),
        "offline_results": _(
            "You are offline: these are households saved on this phone, "
            "as they were when last seen online."
        ),
        "offline_nearby": _(
            "You are offline: distances are from saved positions of households seen online."
        ),
        "offline_no_results": _(
            "You are offline and no household saved on this phone matches. "
            "Search while online to keep households for offline use."
        ),
        "search_failed": _("The search failed: %(reason)s"),
        "geolocation_unavailable": _("This browser cannot tell where you are."),
        "geolocation_denied": _(
            "Your position is not available (%(reason)s). Allow location for this site, "
            "or search by name or archive number."
        ),
        "distance_m": _("%(distance)s m"),
        "distance_km": _("%(distance)s km"),
        "no_grade": str(SafetyGrade.NOT_APPRAISED.label),
        "grade_label": _("Grade %(grade)s"),
        "rate_all": _("Rate every member: %(count)s still to rate."),
        "grade_same": _("As derived (%(grade)s)"),
        "reason_required": _("Write why you give a grade other than the derived one."),
        "choose_household": _("Choose a household first."),
        "choose_kind": _("Choose the kind of inspection."),
        "missing_none": _("All required photos are taken."),
        # Translators: what separates the items of a list ("、" in Chinese).
        "list_separator": _(", "),
        "missing_some": _("Missing photos (%(count)s): %(slots)s"),
        "take_photo": _("Take photo"),
        "retake_photo": _("Take again"),
        "take_photo_of": _("Take the photo: %(slot)s"),
        "photo_taken": _("Taken"),
        "photo_missing": _("Missing"),
        "saved_waiting": _(
            "Saved on this phone. It will be sent when the network allows: %(household)s."
        ),
        "status_waiting": _("Waiting"),
        "status_sending": _("Sending"),
        "status_sent": _("Sent"),
        "status_failed": _("Failed"),
        "status_blocked": _("Waiting for you to log in again"),
        "queue_empty": _("Nothing recorded on this phone yet."),
        "queue_counts": _("Waiting: %(waiting)s · Sent: %(sent)s · Failed: %(failed)s"),
        "photos_progress": _("Photos sent: %(sent)s of %(total)s"),
        "next_try": _("Next try at %(time)s."),
        "attempts": _("Tries so far: %(count)s."),
        "network_error": _("No connection to the server."),
        "server_error": _("The server answered %(status)s; it will be tried again."),
        "session_expired": _(
            "Your login has expired or the page is out of date. "
            "Log in again, then open this page: waiting records will be sent."
        ),
        # Another user's records, never shown: only how many wait for them to log in.
        "others_waiting": _(
            "Records of other users waiting on this phone: %(count)s. They are kept, and sent "
            "when their user logs in here."
        ),
        "inspection_failed": _("The inspection was refused, so its photos cannot be sent."),
        "refused": _("Refused by the server (%(status)s): %(reason)s"),
        "online": _("Online"),
        "offline": _("Offline"),
        "offline_note": _(
            "You are offline: new records wait on this phone until the network returns."
        ),
        "storage_persisted": _("This phone keeps waiting records even when storage runs low."),
        "storage_not_persisted": _(
            "The browser may delete waiting records if the phone runs out of space: send them soon."
        ),
        "storage_unknown": _("This browser cannot promise to keep waiting records."),
        "storage_unavailable": _(
            "This browser cannot store records (private mode?): the page cannot work offline."
        ),
        "sw_unavailable": _("This browser cannot keep the page for offline use."),
        "sw_ready": _("Ready for offline use."),
        "open_file": _("Open the household file"),
        # The grade before any member is rated: none yet (never "A").
        "not_rated": _("Not rated yet."),
        "grade_same_unrated": _("As derived"),
        # Drafts: the form kept on the phone from the first tap.
        "draft_saved": _("Draft kept on this phone (%(time)s)."),
        "draft_failed": _("This draft could not be kept on this phone: %(reason)s"),
        # Reasons the phone's storage gives (queue.js, villages.js), in draft_failed,
        # villages_download_failed and the like.
        "storage_missing": _("this browser lets the page keep nothing (private mode?)"),
        "storage_aborted": _(
            "the phone's storage stopped before everything was written; try again"
        ),
        "draft_storage_full": _(
            "This phone's storage is full: the last changes to this draft are not kept on "
            "the phone, only on this screen. Do not close the page. Free some space (remove "
            "an offline village below, or files on the phone); the next change tries again."
        ),
        "draft_photos_lost": _(
            "Photos this draft had that the phone could not keep (its storage was full): "
            "%(count)s. Take them again: %(slots)s"
        ),
        "send_storage_full": _(
            "This phone's storage is full: the record could not be kept for sending. It is "
            "still in the form. Free some space (remove an offline village, or files on the "
            "phone), then send again."
        ),
        "draft_resume": _("Resume"),
        "draft_discard": _("Discard"),
        "draft_discard_confirm": _(
            "Discard the draft for %(household)s, with its photos? This cannot be undone."
        ),
        "draft_photos": _("Photos: %(count)s"),
        "draft_changed": _("Last change %(time)s"),
        # Another kind of inspection, other photo slots.
        "kind_change_aside": _(
            "Photos with no slot in “%(kind)s”: %(count)s. They will be set aside: kept in "
            "this draft, not sent with this kind, and back in their slots if you choose the "
            "kind again. Change the kind?"
        ),
        "aside_title": _("Set aside, not sent with this kind (%(count)s):"),
        "send_without_aside": _(
            "Photos set aside: %(count)s. They will not be sent and will be deleted with "
            "this draft. Send anyway?"
        ),
        "saved_sent": _("Sent to the server: %(household)s."),
        # The sent photos and the server's checks.
        "photo_checking": _("Being checked…"),
        "photo_no_flags": _("No problem found."),
        "flag_with_detail": _("%(label)s: %(detail)s"),
        "retake_flagged": _("Retake"),
        "retake_this": _("Take this photo again"),
        # The chosen household's context (from the downloaded villages or the server).
        # One sentence each, the grade's pill put where %(grade)s is (field.js).
        "context_grade": _("Current grade: %(grade)s"),
        "context_grade_on": _("Current grade: %(grade)s, graded on %(date)s"),
        "context_last_visit": _("Last visit: %(date)s, %(kind)s"),
        "context_no_visit": _("No visit recorded yet."),
        "earlier_photo": _("Earlier, %(date)s"),
        "earlier_photo_undated": _("Earlier photo"),
        "earlier_photo_alt": _("Earlier photo: %(slot)s"),
        "remove": _("Remove"),
        # The offline villages panel (villages.js).
        "villages_loading": _("Loading the villages of your regions…"),
        "villages_none": _("No village is in your regions."),
        "villages_offline_list": _(
            "You are offline: only the villages kept on this phone are listed."
        ),
        "villages_load_failed": _("The villages could not be loaded: %(reason)s"),
        "village_households": _("Households: %(count)s"),
        "village_kept": _("Downloaded %(time)s · households: %(count)s · %(size)s"),
        "village_photos_failed": _(
            "Photos that could not be downloaded: %(count)s. Update to try again."
        ),
        "village_update": _("Update"),
        "village_remove": _("Remove"),
        "villages_downloading": _("Downloading %(village)s: photos %(done)s of %(total)s…"),
        "villages_downloaded": _("Kept on this phone: %(villages)s."),
        # Translators: what separates village names in a list ("、" in Chinese).
        "villages_separator": _(", "),
        "villages_download_failed": _("The download stopped: %(reason)s"),
        "villages_removed": _("Removed from this phone: %(village)s."),
        "villages_gone": _("No longer in your regions, so removed from this phone: %(villages)s."),
        "villages_total": _("Villages on this phone take %(size)s in all."),
        "villages_none_kept": _("No village is kept on this phone yet."),
        "villages_storage_full": _(
            "This phone's storage is full: the download stopped and the village is not kept. "
            "Remove villages you no longer need, or free space on the phone, then try again."
        ),
        # Translators: the villages of no township, grouped in the chooser.
        "villages_no_township": _("Other villages"),
        "villages_select_all": _("Select all (%(count)s)"),
        "villages_chosen": _("Villages chosen: %(count)s"),
        "villages_storage_unavailable": _(
            "This browser cannot keep villages (private mode?): search needs the network."
        ),
        "villages_network_error": _("No connection to the server."),
        "villages_server_error": _("The server answered %(status)s."),
        "villages_session_expired": _(
            "Your login has expired or the page is out of date. Log in again, then open this page."
        ),
        "size_kb": _("%(size)s KB"),
        "size_mb": _("%(size)s MB"),
    }


def _slot_config(user) -> dict[str, list[dict]]:
    """The required photo slots per kind, as GET /api/photo-slots/ gives them.

    Rendered into the page too, so that the form has its slots even before the API answers.
    """
    return {
        kind: [
            {
                "stage": stage,
                "angle": angle,
                "stage_label": str(PhotoStage(stage).label),
                "angle_label": str(PhotoAngle(angle).label),
            }
            for stage, angle in pairs
        ]
        for kind, pairs in photo_slot_list(user=user).items()
    }


def _config(request) -> dict:
    rule = active_rule()
    user = request.user
    return {
        "user": {"id": user.pk, "name": user.get_full_name() or user.username},
        "csrf_token": get_token(request),
        "language": request.LANGUAGE_CODE,
        "urls": {
            "households": reverse("api:household-list"),
            "nearby": reverse("api:household-nearby"),
            "photo_slots": reverse("api:photo-slots"),
            # Photos go to <inspections><client_uuid>/photos/ (the API's nested route).
            "inspections": reverse("api:inspection-list"),
            "service_worker": reverse("inspections:field_sw"),
            "scope": reverse("inspections:field"),
            # Offline villages (villages.js): a village's bundle is this plus its code.
            "field_villages": reverse("api:field-villages"),
            "field_household_context": reverse(
                "api:field-household-context", kwargs={"pk": 0}
            ).replace("/0/", "/{id}/"),
        },
        "rule": {
            "name": rule.name,
            "d_members": list(rule.d_members),
            "site_hazard_makes_d": bool(rule.site_hazard_makes_d),
        },
        "members": [{"code": code, "label": str(label)} for code, label in MEMBERS],
        "ratings": [{"code": c, "label": str(label)} for c, label in MemberRating.choices],
        "hazards": [{"code": c, "label": str(label)} for c, label in SiteHazard.choices],
        "kinds": [{"code": c, "label": str(label)} for c, label in InspectionKind.choices],
        "stages": {c: str(label) for c, label in PhotoStage.choices},
        "angles": {c: str(label) for c, label in PhotoAngle.choices},
        # The kinds whose record must or may carry an appraisal (the service decides).
        "appraisal_kinds": {"appraisal": "required", "completion": "optional"},
        "slots": _slot_config(user),
    }


@require_GET
@login_required
def field_page(request):
    if not can_use_field_page(request.user):
        return render(request, "inspections/field.html", {"refused": True}, status=403)
    response = render(
        request,
        "inspections/field.html",
        {
            "config": _config(request),
            "strings": _strings(),
            "kinds": InspectionKind.choices,
            "members": MEMBERS,
            "ratings": MemberRating.choices,
            "hazards": SiteHazard.choices,
            "grades": [(c, label) for c, label in SafetyGrade.choices if c],
        },
    )
    # The service worker keeps its own copy for offline use; the HTTP cache must not serve
    # a stale page (with another user's name or an old CSRF token) when online.
    response["Cache-Control"] = "no-cache, private"
    return response


def _precache_urls() -> list[str]:
    return [
        reverse("inspections:field"),
        reverse("inspections:field_manifest"),
        *(static(path) for path in FIELD_STATIC),
    ]


def _version() -> str:
    """A digest of every precached static file: the name of the worker's cache."""
    digest = hashlib.sha256()
    for path in FIELD_STATIC:
        found = finders.find(path)
        if found:
            with open(found, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:16]


@require_GET
def field_service_worker(request):
    """The worker script, served from /field/ so that its default scope is /field/.

    Anonymous on purpose: a browser re-checks its worker in the background, and a redirect
    to the login page would fail that check; the script holds no data.
    """
    body = render_to_string(
        "inspections/sw.js",
        {
            "version": _version(),
            "precache": json.dumps(_precache_urls()),
            "scope": reverse("inspections:field"),
            "photo_slots": reverse("api:photo-slots"),
        },
    )
    response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    # Browsers compare the worker byte for byte on each visit; never serve it from a cache.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = reverse("inspections:field")
    return response


@require_GET
@never_cache
def field_manifest(request):
    manifest = {
        "name": _("Anju field inspections"),
        "short_name": _("Anju field"),
        "description": _("Record appraisals and photos at the house, with or without a network."),
        "lang": request.LANGUAGE_CODE,
        "start_url": reverse("inspections:field"),
        "scope": reverse("inspections:field"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f4f6f8",
        "theme_color": "#1d6a53",
        "icons": [
            {"src": static("field/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("field/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        ],
    }
    return HttpResponse(
        json.dumps(manifest, ensure_ascii=False),
        content_type="application/manifest+json; charset=utf-8",
    )
