#!/usr/bin/env bash
# Install what Anju needs on Debian 12: system packages (when missing) and the virtualenv.
# Idempotent and quiet when everything is already there. Used by every make target.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  python3.11 python3-venv python3-dev        # Debian's Python: its sqlite3 can load SpatiaLite
  gdal-bin libgdal32 libgeos-c1v5 libproj25 proj-bin   # GeoDjango's C libraries
  libsqlite3-mod-spatialite                   # the embedded database
  postgresql postgresql-15-postgis-3 postgresql-client # PostGIS for production and tests
  redis-server                                # the Celery broker (tests run a real worker)
  gettext                                     # compilemessages / makemessages
  fonts-noto-cjk                              # Chinese text in screenshots and reports
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0  # WeasyPrint's text layout (PDF reports)
  poppler-utils                               # pdftoppm/pdftotext: tests render the PDFs to PNG
  chromium                                    # Playwright drives Debian's browser
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's python3.11, not a pyenv/other build: those often lack sqlite3 extension loading.
PY=/usr/bin/python3.11
# Some machines' pip.conf names local indexes that may be absent; drop that noise only.
pip_quiet() {
  .venv/bin/pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
  pip_quiet install -q --upgrade pip
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python requirements"
  pip_quiet install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
