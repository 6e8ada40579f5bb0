#!/usr/bin/env bash
# Extract translatable strings, merge them into the catalogs and compile them.
#   scripts/i18n.sh            extract + update + compile
#   scripts/i18n.sh compile    compile only
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
LOCALES=src/telereg/locale
if [ "${1:-}" != "compile" ]; then
  "$PYBABEL" extract -F babel.cfg -k N_ --no-location --sort-output --project telereg \
    -o "$LOCALES/messages.pot" src/telereg
  for lang in zh_CN en; do
    if [ -f "$LOCALES/$lang/LC_MESSAGES/messages.po" ]; then
      "$PYBABEL" update --no-fuzzy-matching -i "$LOCALES/messages.pot" -d "$LOCALES" -l "$lang"
    else
      "$PYBABEL" init -i "$LOCALES/messages.pot" -d "$LOCALES" -l "$lang"
    fi
  done
fi
"$PYBABEL" compile -d "$LOCALES" --use-fuzzy=false 2>/dev/null || "$PYBABEL" compile -d "$LOCALES"
