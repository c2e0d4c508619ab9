"""Problems found in an import file, and the report a person reads to fix them."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an import file.

    `row` counts as a spreadsheet does (the header is row 1); for a GIS layer it is the
    feature's position in the layer, from 1. `column` is the header as written in the file.
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None
    unit: str = "row"  # "row" in a table, "feature" in a GIS layer

    def __str__(self) -> str:
        params = {
            "file": self.file,
            "row": self.row or 0,
            "column": self.column,
            "value": self.value if self.value is not None else "",
            "message": self.message,
        }
        # Whole sentences per case, so that translators never see glued-together pieces.
        if self.row is None:
            if self.column is None:
                return _("%(file)s: %(message)s") % params
            return _("%(file)s, column %(column)s: %(message)s") % params
        if self.unit == "feature":
            if self.column is None:
                return _("%(file)s, feature %(row)d: %(message)s") % params
            return (
                _("%(file)s, feature %(row)d, field %(column)s, value “%(value)s”: %(message)s")
                % params
            )
        if self.column is None:
            return _("%(file)s, row %(row)d: %(message)s") % params
        return (
            _("%(file)s, row %(row)d, column %(column)s, value “%(value)s”: %(message)s") % params
        )


class ImportFailed(Exception):
    """The file has problems; nothing was written. `str()` is the whole report."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(format_problems(problems))


def format_problems(problems: list[Problem]) -> str:
    heading = ngettext(
        "%(count)d problem found; nothing was imported.",
        "%(count)d problems found; nothing was imported.",
        len(problems),
    ) % {"count": len(problems)}
    return "\n".join([heading, *(str(p) for p in problems)])


def messages_of(error: ValidationError) -> str:
    """One line from a ValidationError however it was built (single, list or dict)."""
    return " ".join(str(m) for m in error.messages)
