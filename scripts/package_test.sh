#!/usr/bin/env bash
# Installs Gyre the two documented ways and checks that each install works:
#   1. `cargo install --path crates/server` → `gyre version`;
#   2. the Debian package (`cargo deb -p gyre-server`) → `dpkg -i`, the files, the unit,
#      the generated configuration, then the service's command run as the `gyre` user with
#      the unit's environment file answers /health; finally `dpkg --purge`.
# Needs root (dpkg). The machine may have no running systemd (containers): the service's
# ExecStart is then run the way systemd would run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# Pinned like cargo-shear in .ci/run: installed once into ~/.cargo/bin, reused afterwards.
DEB_VERSION=3.8.0
if ! cargo install --list | grep -x "cargo-deb v$DEB_VERSION:" >/dev/null; then
  (unset CARGO_TARGET_DIR; cargo install --locked "cargo-deb@$DEB_VERSION")
fi

echo "== cargo install --path crates/server"
root="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
cargo install --quiet --locked --path crates/server --root "$root"
"$root/bin/gyre" version | grep -q '^Gyre v'
echo "cargo install: $("$root/bin/gyre" version | head -1)"

echo "== cargo deb -p gyre-server"
# cargo install built the release binary in the same target directory: no second build.
deb="$(cargo deb -p gyre-server --no-strip 2>/dev/null | tail -n 1)"
[ -f "$deb" ] || { echo "no package built" >&2; exit 1; }
echo "built $deb"
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends):'
contents="$(dpkg-deb --contents "$deb")"
for f in ./usr/bin/gyre ./lib/systemd/system/gyre.service ./etc/default/gyre; do
  grep -q " $f\$" <<<"$contents" || { echo "package lacks $f" >&2; exit 1; }
done

echo "== dpkg -i"
dpkg --purge gyre >/dev/null 2>&1 || true
dpkg -i "$deb"
getent passwd gyre >/dev/null || { echo "no gyre user" >&2; exit 1; }
[ "$(stat -c '%U:%G %a' /etc/gyre/config.json)" = "root:gyre 640" ] \
  || { echo "config.json owner/mode: $(stat -c '%U:%G %a' /etc/gyre/config.json)" >&2; exit 1; }
/usr/bin/gyre checkconfig -c /etc/gyre/config.json
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/gyre.service
fi

echo "== the service answers /health"
unit=/lib/systemd/system/gyre.service
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(
  set -a
  # shellcheck disable=SC1091
  . /etc/default/gyre
  set +a
  export CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1 CENTRIFUGO_HTTP_SERVER_PORT="$port"
  cd /
  exec setpriv --reuid=gyre --regid=gyre --init-groups $exec_start
) >"$root/service.log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 100); do
  if body="$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null)"; then ok=1; break; fi
  sleep 0.2
done
if [ -z "$ok" ]; then
  echo "the service did not answer /health; its log:" >&2
  cat "$root/service.log" >&2
  exit 1
fi
[ "$body" = "{}" ] || { echo "unexpected /health body: $body" >&2; exit 1; }
[ "$(ps -o user= -p "$pid")" = "gyre" ] || { echo "not running as gyre" >&2; exit 1; }
echo "service on 127.0.0.1:$port as user gyre: /health → $body"
kill -TERM "$pid"
wait "$pid" || true
pid=""

echo "== dpkg --purge"
dpkg --purge gyre
[ ! -e /usr/bin/gyre ] && [ ! -e /etc/gyre/config.json ] \
  || { echo "purge left files behind" >&2; exit 1; }
echo "package test: ok"
