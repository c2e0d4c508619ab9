"""Export jobs, scope, the /exports/ and /verify/ pages and the management commands."""

import csv
import errno
import io
import json

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.chain import verify_chain
from housing.models import Household
from renovation.models import CaseEvent, CaseEventKind, RenovationCase
from reports.errors import ExportForbidden
from reports.forms import ExportForm
from reports.kinds import KINDS
from reports.models import Export, ExportStatus
from reports.runner import export_run
from reports.services import document_verify, export_request
from reports.tasks import export_run as export_task
from tests.factories import HouseFactory, HouseholdFactory, make_region, square
from tests.reports.conftest import export_bytes, run_export

OFFICE_ROLES = ["township", "county", "auditor"]
LIST_KINDS = {"households", "cases", "worklist"}
FORMAT = {code: spec.formats[0] for code, spec in KINDS.items()}


class FullDiskStorage(FileSystemStorage):
    """The local storage on a disk that is full: every write fails as the OS says."""

    def _save(self, name, content):
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def other_county(demo_county):
    """A county next to the demo one, with a household and a case: no demo user but the
    administrator may see it."""
    village = make_region("520398100200", "外县村", boundary=square(106.0, 26.0, 0.05))
    household = HouseholdFactory(village=village, head_name="外县户主")
    HouseFactory(household=household, is_current=True, safety_grade="D")
    return {"county": village.parent.parent, "village": village, "household": household}


def naming(kind: str, *, region: str = "", household: int | None = None) -> dict:
    """The parameters that name a region (or a household) into an export of this kind."""
    if kind == "household_file":
        return {"household": household}
    if kind in LIST_KINDS:
        # The case list filters by township (a choice among the user's); the others by region.
        return {"filters": {"township" if kind == "cases" else "region": [region]}}
    params = {"region": region}
    if kind == "acceptance":
        params["funding_year"] = 2024
    return params


def document_events() -> int:
    return CaseEvent.objects.filter(kind=CaseEventKind.DOCUMENT).count()


@pytest.mark.usefixtures("demo_county")
class TestScope:
    @pytest.mark.parametrize("kind", list(KINDS))
    def test_an_inspector_makes_no_export(self, demo_county, kind):
        with pytest.raises(ExportForbidden, match=r"Your role may not make this export\."):
            export_request(user=demo_county.inspector, kind=kind, format=FORMAT[kind], params={})
        assert not Export.objects.exists()

    @pytest.mark.parametrize("role", OFFICE_ROLES)
    @pytest.mark.parametrize("kind", list(KINDS))
    def test_a_region_or_household_outside_the_users_cannot_be_named(
        self, demo_county, other_county, kind, role
    ):
        if kind == "worklist" and role == "township":
            pytest.skip("townships do not see the worklist (tested below)")
        user = demo_county.users[role]
        outside = naming(
            kind, region=other_county["village"].code, household=other_county["household"].pk
        )
        # Asked for on the page: a field error, and nothing is recorded.
        form = ExportForm(
            data={
                "kind": kind,
                "format": FORMAT[kind],
                "region": outside.get("region", ""),
                "funding_year": outside.get("funding_year", ""),
                "household": outside.get("household", ""),
                "filters": "&".join(f"{k}={v[0]}" for k, v in outside["filters"].items())
                if "filters" in outside
                else "",
            },
            user=user,
        )
        assert not form.is_valid()
        errors = json.dumps(form.errors, ensure_ascii=False)
        assert "among your regions" in errors or "Select a valid choice" in errors
        # Asked for around the form (the API of tomorrow, a forged POST): the job refuses.
        events = document_events()
        export = run_export(user, kind, FORMAT[kind], **outside)
        assert export.status == ExportStatus.FAILED
        assert "among your regions" in export.error or "not valid" in export.error
        assert export.file == "" and export.sha256 == ""
        assert document_events() == events

    @pytest.mark.parametrize("kind", list(KINDS))
    def test_a_township_official_cannot_name_the_county_above_them(self, demo_county, kind):
        if kind == "worklist":
            pytest.skip("townships do not see the worklist")
        household = (
            Household.objects.exclude(village__code__startswith="520399100").order_by("id").first()
        )
        params = naming(kind, region="520399", household=household.pk)
        export = run_export(demo_county.township, kind, FORMAT[kind], **params)
        assert export.status == ExportStatus.FAILED, kind

    def test_a_township_official_has_no_worklist_export(self, demo_county):
        with pytest.raises(ExportForbidden):
            export_request(
                user=demo_county.township, kind="worklist", format="csv", params={"filters": {}}
            )

    @pytest.mark.parametrize(
        "kind, column",
        [("households", 0), ("members", 0), ("cases", 1), ("payments", 2), ("worklist", 1)],
    )
    @pytest.mark.parametrize("role", ["township", "county", "auditor", "admin"])
    def test_a_ledger_holds_only_the_users_regions(
        self, demo_county, other_county, kind, column, role
    ):
        if kind == "worklist" and role == "township":
            pytest.skip("townships do not see the worklist")
        user = demo_county.users[role]
        params = {"filters": {}} if kind in LIST_KINDS else {}
        export = run_export(user, kind, "csv", **params)
        assert export.status == ExportStatus.DONE, export.error
        rows = list(csv.reader(io.StringIO(export_bytes(export).decode("utf-8-sig"))))[1:]
        archive_nos = {r[column] for r in rows}
        prefix = {"township": "520399100", "county": "520399", "auditor": "520399"}.get(role)
        if prefix:
            assert archive_nos and all(a.startswith(prefix) for a in archive_nos)
        if kind == "households":
            visible = Household.objects.filter(village__code__startswith=prefix or "")
            assert len(rows) == visible.count()
            if role == "admin":
                assert other_county["household"].archive_no in archive_nos


@pytest.mark.usefixtures("demo_county")
class TestJobs:
    def test_a_finished_export_is_stored_numbered_and_chained(self, demo_county):
        export = run_export(demo_county.auditor, "households", "csv", filters={})
        assert export.status == ExportStatus.DONE
        assert export.number == f"AJ-{export.created_at.year}-{export.pk:06d}"
        assert export.filename == f"{export.number}-households.csv"
        data = export_bytes(export)
        assert export.size == len(data)
        event = export.event
        assert event.kind == CaseEventKind.DOCUMENT and event.case is None
        assert event.actor == demo_county.auditor
        assert event.data["sha256"] == export.sha256
        assert event.data["number"] == export.number
        assert event.data["params"] == {"filters": {}}
        assert event.prev_hash == export.chain_head or event.data["chain_head"] == export.chain_head
        checked, broken = verify_chain()
        assert broken is None and checked == CaseEvent.objects.count()

    def test_a_failed_job_says_why_and_leaves_no_file(self, demo_county, settings, demo_media):
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "tests.reports.test_exports.FullDiskStorage",
                "OPTIONS": {"location": str(demo_media)},
            },
        }
        events = document_events()
        files_before = sorted(p for p in demo_media.rglob("*") if p.is_file())
        export = run_export(demo_county.auditor, "members", "xlsx")
        assert export.status == ExportStatus.FAILED
        assert export.error == ("The export stopped: OSError: [Errno 28] No space left on device")
        assert export.file == "" and export.finished_at is not None
        assert document_events() == events
        assert sorted(p for p in demo_media.rglob("*") if p.is_file()) == files_before

    def test_a_job_whose_worker_died_is_run_again_when_its_message_comes_back(
        self, demo_county, settings, monkeypatch
    ):
        import reports.ledgers

        export = export_request(
            user=demo_county.auditor, kind="cases", format="xlsx", params={"filters": {}}
        )

        # The worker dies in the middle of writing (SIGKILL: no except clause runs).
        class WorkerKilled(BaseException):
            pass

        def dies(job):
            job.set_total(10)
            job.advance(3)
            job.flush()
            raise WorkerKilled

        with monkeypatch.context() as patch:
            patch.setattr(reports.ledgers, "build", dies)
            with pytest.raises(WorkerKilled):
                export_run(export_id=export.pk)
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING and export.done == 3
        # The message is delivered again at once: the job looks alive, so it is left alone.
        assert export_run(export_id=export.pk) is None
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING and export.attempts == 1
        # Once it has shown no progress for ANJU_EXPORT_STALE_S, the next delivery starts over.
        Export.objects.filter(pk=export.pk).update(
            heartbeat_at=timezone.now()
            - timezone.timedelta(seconds=settings.ANJU_EXPORT_STALE_S + 1)
        )
        done = export_run(export_id=export.pk)
        assert done.status == ExportStatus.DONE and done.attempts == 2
        assert done.done == done.total == RenovationCase.objects.count()
        # A late duplicate of the message changes nothing: one file, one event.
        events = document_events()
        assert export_run(export_id=export.pk) is None
        assert document_events() == events
        assert (
            CaseEvent.objects.filter(kind=CaseEventKind.DOCUMENT, data__number=done.number).count()
            == 1
        )

    def test_the_task_is_acknowledged_late_and_requeued_when_its_worker_is_lost(self):
        assert export_task.acks_late is True
        assert export_task.reject_on_worker_lost is True

    def test_a_failed_export_can_be_tried_again_by_its_owner(self, demo_county, client):
        export = run_export(demo_county.auditor, "payments", "csv", region="520398")
        assert export.status == ExportStatus.FAILED
        client.force_login(demo_county.county)
        response = client.post(reverse("reports:export_retry", args=[export.pk]))
        assert response.status_code == 404  # someone else's export is not even there
        client.force_login(demo_county.auditor)
        response = client.post(reverse("reports:export_retry", args=[export.pk]))
        assert response.status_code == 302
        export.refresh_from_db()
        assert export.status == ExportStatus.QUEUED and export.error == ""


@pytest.mark.usefixtures("demo_county")
class TestPages:
    @pytest.mark.parametrize(
        "role, status", [("inspector", 403), ("township", 200), ("auditor", 200), ("admin", 200)]
    )
    def test_the_exports_page_is_for_the_office_roles(self, demo_county, client, role, status):
        client.force_login(demo_county.users[role])
        response = client.get(reverse("reports:export_list"))
        assert response.status_code == status
        if status == 200:
            kinds = [k.code for k in KINDS.values() if k.may(demo_county.users[role])]
            assert [k["code"] for k in response.context["kinds"]] == kinds
            assert ("worklist" in kinds) is (role != "township")

    def test_anonymous_visitors_are_sent_to_log_in(self, client):
        for name in ("reports:export_list", "reports:verify", "reports:export_status"):
            response = client.get(reverse(name))
            assert response.status_code == 302 and "/login/" in response["Location"]

    def test_asking_for_an_export_runs_it_and_lists_it_with_its_progress(
        self, demo_county, client, django_capture_on_commit_callbacks
    ):
        client.force_login(demo_county.auditor)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("reports:export_create"),
                {"kind": "households", "format": "xlsx", "filters": "grade=D&page=3"},
            )
        export = Export.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/exports/#export-{export.pk}"
        assert export.params["filters"] == {"grade": ["D"]}  # not the page number
        page = client.get(reverse("reports:export_list"))
        assert export.number in page.content.decode()
        status = client.get(reverse("reports:export_status")).json()["exports"][0]
        assert status["number"] == export.number
        assert status["status"] == "done" and status["percent"] == 100
        assert (
            status["done"]
            == status["total"]
            == Household.objects.filter(houses__is_current=True, houses__safety_grade="D").count()
        )
        assert status["download_url"] == f"/exports/{export.pk}/download/"

    def test_a_format_the_kind_does_not_come_in_is_a_field_error(self, demo_county, client):
        client.force_login(demo_county.auditor)
        response = client.post(
            reverse("reports:export_create"), {"kind": "households", "format": "pdf"}
        )
        assert response.status_code == 400
        assert "Ledger: households comes as Excel (XLSX), CSV (UTF-8)." in (
            response.content.decode()
        )
        assert not Export.objects.exists()

    def test_only_its_owner_and_administrators_download_an_export(self, demo_county, client):
        export = run_export(demo_county.auditor, "members", "csv")
        url = reverse("reports:export_download", args=[export.pk])
        for user, status in [
            (demo_county.auditor, 200),
            (demo_county.admin, 200),
            (demo_county.county, 404),
            (demo_county.township, 404),
        ]:
            client.force_login(user)
            response = client.get(url)
            assert response.status_code == status, user
            if status == 200:
                body = b"".join(response.streaming_content)
                assert body == export_bytes(export)
                assert response["X-Content-SHA256"] == export.sha256
                assert export.filename in response["Content-Disposition"]

    def test_the_list_pages_offer_to_export_what_they_show(self, demo_county, client):
        client.force_login(demo_county.auditor)
        for url, kind in [
            (reverse("housing:household_list") + "?grade=D&page=1", "households"),
            (reverse("cases:case_list") + "?state=paid", "cases"),
            (reverse("audit:worklist") + "?kind=photo_flags", "worklist"),
        ]:
            html = client.get(url).content.decode()
            assert f'name="kind" value="{kind}"' in html, kind
        html = client.get(reverse("housing:household_list") + "?grade=D&page=1").content.decode()
        assert 'name="filters" value="grade=D"' in html

    def test_the_household_page_offers_its_pdf_to_the_office_roles(self, demo_county, client):
        household = Household.objects.filter(village__code__startswith="520399100").first()
        url = reverse("portal:household_detail", args=[household.pk])
        for role, shown in [("inspector", False), ("township", True), ("auditor", True)]:
            client.force_login(demo_county.users[role])
            html = client.get(url).content.decode()
            assert ('value="household_file"' in html) is shown, role


@pytest.mark.usefixtures("demo_county")
class TestVerification:
    def test_the_issued_file_passes_a_changed_byte_fails_an_unknown_file_is_unknown(
        self, demo_county
    ):
        export = run_export(demo_county.auditor, "cases", "xlsx", filters={})
        data = export_bytes(export)
        issued = document_verify(fileobj=io.BytesIO(data))
        assert issued.outcome == "issued" and issued.export == export and issued.event_intact
        changed = bytearray(data)
        changed[len(changed) // 2] ^= 0x01
        assert document_verify(fileobj=io.BytesIO(bytes(changed))).outcome != "issued"
        unknown = document_verify(fileobj=io.BytesIO(b"Archive number,Village\n"))
        assert unknown.outcome == "unknown" and unknown.export is None

    def test_a_tampered_chain_event_is_reported(self, demo_county):
        export = run_export(demo_county.auditor, "payments", "csv")
        CaseEvent.objects.filter(pk=export.event_id).update(reason="edited")
        result = document_verify(fileobj=io.BytesIO(export_bytes(export)))
        assert result.outcome == "issued" and result.event_intact is False

    def test_the_verify_page(self, demo_county, client):
        export = run_export(demo_county.auditor, "members", "csv")
        data = export_bytes(export)
        client.force_login(demo_county.inspector)  # any signed-in user
        page = client.get(reverse("reports:verify") + f"?number={export.number}")
        assert page.status_code == 200
        assert "Anju issued a document with this number." in page.content.decode()
        for body, outcome in [
            (data, "issued"),
            (data + b"\n", "unknown"),
            (b"nothing of ours", "unknown"),
        ]:
            upload = io.BytesIO(body)
            upload.name = "ledger.csv"
            response = client.post(reverse("reports:verify"), {"file": upload})
            assert response.status_code == 200
            assert f'data-outcome="{outcome}"' in response.content.decode()
        assert client.post(reverse("reports:verify"), {}).status_code == 400
        unknown = client.get(reverse("reports:verify") + "?number=AJ-2026-999999")
        assert "Anju has issued no document with this number." in unknown.content.decode()

    def test_verify_document_command(self, demo_county, tmp_path):
        export = run_export(demo_county.auditor, "cases", "csv", filters={})
        good = tmp_path / "good.csv"
        good.write_bytes(export_bytes(export))
        out = io.StringIO()
        call_command("verify_document", str(good), stdout=out)
        assert out.getvalue().startswith(
            f"Issued by Anju: {export.number}, Ledger: renovation cases"
        )
        bad = tmp_path / "bad.csv"
        bad.write_bytes(export_bytes(export).replace(b"No", b"Ne", 1))
        with pytest.raises(CommandError, match="Unknown: Anju issued no document"):
            call_command("verify_document", str(bad))
        with pytest.raises(CommandError, match="Cannot read"):
            call_command("verify_document", str(tmp_path / "missing.pdf"))


@pytest.mark.usefixtures("demo_county")
class TestPurge:
    def test_purge_deletes_old_files_and_keeps_them_verifiable(self, demo_county):
        old = run_export(demo_county.auditor, "members", "csv")
        new = run_export(demo_county.auditor, "payments", "csv")
        data = export_bytes(old)
        key = old.file
        Export.objects.filter(pk=old.pk).update(
            finished_at=timezone.now() - timezone.timedelta(days=31)
        )
        out = io.StringIO()
        call_command("purge_exports", "--older-than", "30", stdout=out)
        assert out.getvalue().strip() == "1 export file deleted."
        old.refresh_from_db()
        new.refresh_from_db()
        assert old.status == ExportStatus.PURGED and old.file == ""
        assert not default_storage.exists(key)
        assert new.status == ExportStatus.DONE and default_storage.exists(new.file)
        assert document_verify(fileobj=io.BytesIO(data)).outcome == "issued"

    def test_purge_wants_an_age(self):
        with pytest.raises(CommandError):
            call_command("purge_exports")
