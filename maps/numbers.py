"""How the maps and the dashboard write their figures, in the reader's locale."""

from django.utils.formats import number_format


def percent(value: float | None) -> str:
    """A share as the pages show it: "37.5%", or "—" where undefined (nothing to divide by)."""
    # Rounded here: number_format cuts a float's digits off (66.67 would show as 66.6).
    return "—" if value is None else number_format(round(value * 100, 1), 1) + "%"


def count(value: int | float | None) -> str:
    """A whole number with the locale's grouping: "12,345"; "—" where undefined."""
    return "—" if value is None else number_format(value, 0, force_grouping=True)
