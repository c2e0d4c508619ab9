"""The zh-hans catalogue: complete for every string in the sources, compiled, and in use.

The catalogue is checked with GNU gettext's own tools (msgcmp, msgfmt) rather than a
hand-written .po parser, so what passes here is what Django's compilemessages accepts.
"""

import gettext
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")

# The same options as `make messages`: what it would extract is what must be translated.
MAKEMESSAGES = [
    "makemessages",
    "-l",
    "zh_Hans",
    "--ignore=.venv",
    "--ignore=var",
    "--ignore=media",
    "--ignore=static",
    "--ignore=staticfiles",
    "--no-obsolete",
]
# Not copied: environments, data, caches, generated files, and our own catalogue (the copy
# must extract from scratch, not merge into what we already have).
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "media",
    "static",
    "staticfiles",
    "test-artifacts",
    "locale",
    "results",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.pyc",
)


def run(args):
    """A gettext tool, reporting in plain English whatever the machine's locale."""
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})


def explain(report: str) -> str:
    """msgcmp's errors with the entry each one points at; its unused-entry warnings dropped."""
    out = []
    for line in report.splitlines():
        if ": warning: " in line:
            continue
        out.append(line)
        found = re.match(r"^(.+\.po):(\d+): ", line)
        if found:
            # msgcmp points at the msgstr line: show the entry from its start up to there.
            lines = Path(found[1]).read_text(encoding="utf-8").splitlines()
            start = end = int(found[2]) - 1
            while start > 0 and lines[start - 1].strip():
                start -= 1
            out.extend("    " + text for text in lines[start:end] if not text.startswith("msgstr"))
    return "\n".join(out)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """Every msgid in the sources today, as an untranslated .po made in a copy of the tree."""
    copy = tmp_path_factory.mktemp("sources") / "anju"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCES)
    (copy / "locale").mkdir()
    result = subprocess.run(
        [sys.executable, "manage.py", *MAKEMESSAGES],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    po = copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    assert po.is_file(), result.stdout + result.stderr
    return po


def test_every_source_string_has_a_reviewed_chinese_translation(extracted):
    # msgcmp fails on a msgid missing from our catalogue, untranslated there, or fuzzy.
    result = run(["msgcmp", str(PO), str(extracted)])
    assert result.returncode == 0, (
        "The zh-hans catalogue is missing or has not finished these strings; run "
        "`make messages` and translate them:\n" + explain(result.stderr)
    )


def test_catalogue_has_no_strings_the_sources_no_longer_use(extracted):
    # Reversed roles: every msgid of ours must exist in the fresh extraction.
    result = run(["msgcmp", "--use-untranslated", "--use-fuzzy", str(extracted), str(PO)])
    assert result.returncode == 0, (
        "The zh-hans catalogue has strings the sources no longer use; run `make messages`:\n"
        + explain(result.stderr)
    )


def test_catalogue_header_declares_chinese_with_one_plural_form():
    with MO.open("rb") as f:
        info = gettext.GNUTranslations(f).info()
    assert info["language"] == "zh_Hans"
    assert info["content-type"] == "text/plain; charset=UTF-8"
    assert info["plural-forms"] == "nplurals=1; plural=0;"


def test_compiled_catalogue_matches_the_po_file(tmp_path):
    fresh = tmp_path / "django.mo"
    # --check verifies placeholders (python-format) and the header, as compilemessages does.
    result = run(["msgfmt", "--check", "-o", str(fresh), str(PO)])
    assert result.returncode == 0, result.stderr
    with fresh.open("rb") as f:
        expected = gettext.GNUTranslations(f)._catalog
    with MO.open("rb") as f:
        committed = gettext.GNUTranslations(f)._catalog
    assert committed == expected, "django.mo is stale: run `make messages` (compilemessages)"


def test_key_strings_come_out_in_chinese():
    from accounts.models import Role
    from housing.models import House, Household, SafetyGrade

    with translation.override("zh-hans"):
        assert translation.gettext("Households") == "农户"
        assert str(Household._meta.verbose_name) == "农户"
        assert str(House._meta.get_field("safety_grade").verbose_name) == "安全等级"
        assert str(Role.INSPECTOR.label) == "核查员"
        assert str(Role.TOWNSHIP_OFFICIAL.label) == "乡镇干部"
        assert str(SafetyGrade.C.label) == "C级：局部危房"
        assert str(SafetyGrade.D.label) == "D级：整幢危房"
        assert translation.pgettext("safety grade not appraised", "n/a") == "未鉴定"
        assert (
            translation.ngettext(
                "%(count)d problem found; nothing was imported.",
                "%(count)d problems found; nothing was imported.",
                3,
            )
            % {"count": 3}
            == "发现 3 个问题；未导入任何数据。"
        )


class VisibleText(HTMLParser):
    """The text a person reads or hears: text nodes and labelling attributes, no scripts."""

    ATTRIBUTES = {"title", "aria-label", "data-label", "placeholder", "alt"}

    def __init__(self):
        super().__init__()
        self.pieces: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.pieces.extend(value for name, value in attrs if name in self.ATTRIBUTES and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.pieces.append(data.strip())


# Strings of templates/housing/household_list.html, base.html and the filter form.
ENGLISH_ON_THE_LIST = [
    "Households",
    "Filters",
    "Search",
    "Clear",
    "Archive number",
    "Head of household",
    "ID number",
    "Village",
    "Key group",
    "Grade",
    "Renovation",
    "household",
    "Region",
    "Safety grade",
    "Any grade",
    "Any key group",
    "Any status",
    "All my regions",
    "Not yet appraised",
    "Township official",
    "Log out",
    "Language",
    "Change",
    "Sort by",
    "safe",
    "dangerous",
]


@pytest.mark.django_db
def test_household_list_is_all_chinese_for_a_chinese_browser(client, township_official, households):
    client.force_login(township_official)
    response = client.get("/households/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>农户 · 安居</title>" in page
    assert "<h1>农户</h1>" in page
    assert '<p class="count">共 1 户</p>' in page
    assert '<th scope="col" aria-sort="ascending">档案编号</th>' in page
    assert 'title="按户主姓名排序">户主</a>' in page
    parser = VisibleText()
    parser.feed(page)
    left = [s for s in ENGLISH_ON_THE_LIST if any(s in piece for piece in parser.pieces)]
    assert left == []


# Words we share with Django on purpose, translated our way in both places because the meaning
# is the same and our word is the plainer one (、 is the Chinese enumeration comma).
SAME_MEANING_OVERRIDES = {
    ", ",
    "active",
    "Remove",
    "Action",
    "hash",
    "Page not found",
    "Log out",
    "Debugging window (serialized value)",
    "Summary",
    "Filter",
}


def test_catalogue_does_not_override_djangos_own_words():
    """Our catalogue is searched before Django's: a msgid we share with Django (or its admin)
    without a context keeps Django's translation unless listed above, or the admin changes its
    words (our "Change" once made the admin's 修改 read 切换). Words of our own in another
    sense go under a context."""
    import django
    import polib as _polib

    root = Path(django.__file__).parent
    theirs: dict[str, str] = {}
    for mo in [
        root / "conf/locale/zh_Hans/LC_MESSAGES/django.po",
        root / "contrib/admin/locale/zh_Hans/LC_MESSAGES/django.po",
        root / "contrib/auth/locale/zh_Hans/LC_MESSAGES/django.po",
        root / "contrib/gis/locale/zh_Hans/LC_MESSAGES/django.po",
    ]:
        if mo.exists():
            for entry in _polib.pofile(str(mo)):
                if not entry.msgctxt and entry.msgstr and not entry.msgid_plural:
                    theirs.setdefault(entry.msgid, entry.msgstr)
    clashes = [
        f"{entry.msgid!r}: ours {entry.msgstr!r}, Django's {theirs[entry.msgid]!r}"
        for entry in _polib.pofile(str(PO))
        if not entry.msgctxt
        and not entry.obsolete
        and entry.msgid in theirs
        and entry.msgid not in SAME_MEANING_OVERRIDES
        and entry.msgstr
        and entry.msgstr != theirs[entry.msgid]
    ]
    assert not clashes, "\n".join(clashes)
    with translation.override("zh-hans"):
        word = "Change"  # not a literal: makemessages must not take it into our catalogue
        assert translation.gettext(word) == "修改"
