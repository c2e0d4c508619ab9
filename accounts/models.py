from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    INSPECTOR = "inspector", _("Inspector")
    TOWNSHIP_OFFICIAL = "township_official", _("Township official")
    COUNTY_OFFICIAL = "county_official", _("County official")
    AUDITOR = "auditor", _("Auditor")
    ADMINISTRATOR = "administrator", _("Administrator")


class User(AbstractUser):
    role = models.CharField(
        _("role"),
        max_length=20,
        choices=Role.choices,
        default=Role.INSPECTOR,
        help_text=_("What the user may do; where is set by their regions."),
    )
    regions = models.ManyToManyField(
        "housing.Region",
        blank=True,
        related_name="users",
        verbose_name=_("regions"),
        help_text=_("The user sees these regions and everything under them."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def get_full_name(self):
        """Chinese names read family name first, with no space (陈刚, not 刚 陈)."""
        first, last = self.first_name.strip(), self.last_name.strip()
        if any("\u4e00" <= ch <= "\u9fff" for ch in first + last):
            return f"{last}{first}"
        return super().get_full_name()

    @property
    def is_administrator(self) -> bool:
        return self.is_superuser or self.role == Role.ADMINISTRATOR


class Session(AbstractBaseSession):
    """A browser's signed-in session: Django's own session, and whose it is.

    `user` is copied from the session data each time the session is saved (accounts.sessions),
    so that a request reads its session and its user in one statement. The session data stays
    the truth: a user is taken from the join only when it is the user the data names. No
    database constraint (a session saved as its user is being deleted must not fail the
    request); deleting a user through Django deletes their sessions.
    """

    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
        verbose_name=_("user"),
    )

    class Meta(AbstractBaseSession.Meta):
        pass
