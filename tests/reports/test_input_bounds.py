"""An export's saved household id is re-read within bounds (the form bounded it already)."""

from types import SimpleNamespace

import pytest

from reports.errors import ExportError
from reports.scope import household_of


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "²", "", None, 2**64])
def test_an_impossible_household_id_in_an_exports_params_names_no_household(value):
    job = SimpleNamespace(params={"household": value}, user=None)

    with pytest.raises(ExportError) as refused:
        household_of(job)

    assert str(refused.value) == "No household was named for this export."
