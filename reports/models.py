"""Exports: every file Anju issues (ledgers, GIS files, photo archives, PDFs) is one Export.

An export is a background job and, once done, a document of record: its number, its
SHA-256, who asked for it, with what parameters and at which head of the audit chain are
kept here and appended to the hash chain (renovation.events), so a file can later be shown
to be exactly one that Anju issued (reports.services.document_verify).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    PURGED = "purged", _("File deleted")


class Export(models.Model):
    number = models.CharField(
        _("number"),
        max_length=20,
        unique=True,
        null=True,
        blank=True,
        help_text=_("The document number printed on the file, e.g. AJ-2026-000042."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="exports",
        verbose_name=_("requested by"),
    )
    kind = models.CharField(_("kind"), max_length=32)
    format = models.CharField(_("format"), max_length=10)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=10)
    status = models.CharField(
        _("status"), max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), null=True, blank=True)
    unit = models.CharField(
        _("unit"), max_length=12, default="rows", help_text=_("What done and total count.")
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    file = models.CharField(
        _("file"), max_length=255, blank=True, help_text=_("Storage key of the finished file.")
    )
    filename = models.CharField(_("file name"), max_length=200, blank=True)
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, db_index=True)
    chain_head = models.CharField(
        _("audit chain head"),
        max_length=64,
        blank=True,
        help_text=_("The newest hash of the audit chain when the document was made."),
    )
    event = models.OneToOneField(
        "renovation.CaseEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="export",
        verbose_name=_("chain event"),
    )
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    issued_at = models.DateTimeField(
        _("issued at"),
        null=True,
        blank=True,
        help_text=_("The issue time printed on the file."),
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last progress at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"])]

    def __str__(self):
        return self.number or f"export {self.pk}"

    @property
    def kind_label(self) -> str:
        from reports.kinds import KINDS

        spec = KINDS.get(self.kind)
        return str(spec.label) if spec else self.kind

    @property
    def format_label(self) -> str:
        from reports.kinds import FORMATS

        fmt = FORMATS.get(self.format)
        return str(fmt.label) if fmt else self.format
