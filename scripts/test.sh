#!/usr/bin/env bash
# Install everything the whole test suite needs on a fresh machine, then run it.
# Python packages go into a virtual environment of the project's own (.venv), so this works with
# a distribution's "externally managed" python3 (PEP 668) as well as a plain CPython.
# Debian's Chromium, fonts and python3-venv come from apt (as root, when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    return 0
  fi
  return 1
}

if ! command -v chromium >/dev/null 2>&1 && [ -z "${DISPATCH_CHROMIUM:-}" ]; then
  apt_install chromium fonts-liberation fonts-dejavu-core ||
    echo "note: no Chromium (install Debian's 'chromium' or set DISPATCH_CHROMIUM); browser tests will be skipped" >&2
fi

# the real servers the tests start themselves: PostgreSQL (a throwaway cluster), Dovecot (IMAP),
# Postfix (its own bounces, and a relay with STARTTLS and AUTH), SpamAssassin; none is left
# running as a service
missing=""
# Postfix with Cyrus SASL (AUTH), Perl's Mail::DKIM (a second DKIM verifier), and the Noto fonts
# that screenshots of Arabic, Japanese and emoji need
for tool in /usr/lib/postgresql/*/bin/initdb:/postgresql /usr/sbin/dovecot:/dovecot-imapd \
    /usr/sbin/postfix:/postfix /usr/bin/spamassassin:/spamassassin \
    /usr/sbin/saslpasswd2:/sasl2-bin /usr/lib/*/sasl2/libplain.so:/libsasl2-modules \
    /usr/share/perl5/Mail/DKIM.pm:/libmail-dkim-perl \
    /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:/fonts-noto-cjk \
    /usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf:/fonts-noto-core \
    /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf:/fonts-noto-color-emoji; do
  path="${tool%%:/*}"; package="${tool##*:/}"
  # shellcheck disable=SC2086
  ls $path >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  apt_install $missing ||
    echo "note: missing$missing; the tests that need them will be skipped (CI=true: fail)" >&2
  for service in postgresql dovecot postfix; do
    (service "$service" stop || true) >/dev/null 2>&1
  done
fi

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian/Ubuntu ship venv's ensurepip separately
    apt_install python3-venv || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# the static checks first: they take seconds and name the exact line
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy --strict dispatch_mail
.venv/bin/python -m pytest -q "$@"
