#!/usr/bin/env bash
# Install everything telereg needs on a Debian machine with Python >= 3.11:
#   scripts/setup.sh          Debian packages for reports (CJK fonts), .venv, telereg
#   scripts/setup.sh --test   also Chromium (browser tests), wrk (benchmarks), Java for
#                             Spark if missing, and the test, spark and postgres extras
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=run
[ "${1:-}" = "--test" ] && mode=test

# CJK fonts and Pango for PDF reports (WeasyPrint).
# libgomp1: OpenMP for LightGBM (the learned fraud scorer).
debs=(fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 libgomp1)
if [ "$mode" = test ]; then
  debs+=(chromium wrk)
  command -v java >/dev/null 2>&1 || debs+=(openjdk-17-jre-headless)
fi

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test,spark,postgres]"
else
  .venv/bin/python -m pip install -q -e .
fi
