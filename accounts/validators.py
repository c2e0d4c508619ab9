"""Password rules of our own, next to Django's (AUTH_PASSWORD_VALIDATORS in settings)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LettersAndDigitsValidator:
    """A password needs at least one letter and at least one digit.

    Letters of any script count (汉字 too), so a Chinese pass phrase with a number passes.
    """

    def validate(self, password, user=None):
        if not (any(ch.isalpha() for ch in password) and any(ch.isdigit() for ch in password)):
            raise ValidationError(
                _("This password must contain at least one letter and at least one digit."),
                code="password_needs_letters_and_digits",
            )

    def get_help_text(self):
        return _("Your password must contain at least one letter and at least one digit.")
