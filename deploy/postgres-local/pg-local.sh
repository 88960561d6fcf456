#!/usr/bin/env bash
# pg-local.sh - a local PostgreSQL from the machine's Debian packages, on 127.0.0.1, for the
# warehouse loader's tests and `make run-load`. PostgreSQL refuses to run as root, so the
# server runs as the `postgres` system user; its data and unix socket live in $PG_RUN.
#   pg-local.sh up [PORT]     initdb once, start on PORT (default 55432), create database `plug`;
#                             prints the URL; a no-op when it already runs
#   pg-local.sh stop          fast shutdown (data kept)
#   pg-local.sh crash         immediate shutdown: no checkpoint, WAL recovery at the next start,
#                             as after a crash (fault injection)
#   pg-local.sh clean         stop and delete $PG_RUN
#   pg-local.sh url [PORT]    print the URL
# PG_LISTEN (default 127.0.0.1): the address to listen on, e.g. a test network's (run the
# script inside that host's namespace); PG_ALLOW: a network (CIDR) whose clients are trusted
# too, as 127.0.0.1's are.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_RUN=${PG_RUN:-$(cd "$HERE/../.." && pwd)/.pg}
PG_USER=${PG_USER:-postgres}   # the system user the server runs as
DB=plug
PG_LISTEN=${PG_LISTEN:-127.0.0.1}
PG_ALLOW=${PG_ALLOW:-}

die() { echo "pg-local: $*" >&2; exit 1; }

# close_inherited_fds: a daemon must not keep the caller's locks (see the file)
source "$HERE/../daemon-fds.sh"

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && { echo "$d"; return 0; }; done
  return 1
}

ensure_installed() {
  bindir >/dev/null && return 0
  # a fresh machine: the server comes from Debian's packages
  [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed (apt-get install postgresql)"
  echo "pg-local: installing PostgreSQL from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; } ||
    die "apt-get install postgresql failed"
  bindir >/dev/null || die "no initdb after installing postgresql"
}

# run CMD... as the server's user (as is when we are that user already)
as_pg() {
  if [[ $(id -un) == "$PG_USER" ]]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}

prepare_dirs() {
  mkdir -p "$PG_RUN"
  if [[ $(id -u) == 0 ]]; then
    id "$PG_USER" >/dev/null 2>&1 || die "no system user $PG_USER"
    chown "$PG_USER": "$PG_RUN"
    chmod 700 "$PG_RUN"
    # the server must reach its directory: every parent needs search (x) permission for it
    local d
    d=$(dirname "$PG_RUN")
    while [[ $d != / ]]; do
      as_pg test -x "$d" || chmod o+x "$d"
      d=$(dirname "$d")
    done
  fi
}

data() { echo "$PG_RUN/data"; }
port_of_run() { cat "$PG_RUN/port" 2>/dev/null || echo 55432; }

running() {
  [[ -f $(data)/postmaster.pid ]] || return 1
  as_pg "$(bindir)/pg_ctl" -D "$(data)" status >/dev/null 2>&1
}

url() { echo "postgresql://$PG_USER@$PG_LISTEN:${1:-$(port_of_run)}/$DB"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  local port=${1:-55432} bin
  ensure_installed
  bin=$(bindir)
  prepare_dirs
  if running; then
    [[ $(port_of_run) == "$port" ]] || die "already running on port $(port_of_run); pg-local.sh stop first"
    url "$port"; return 0
  fi
  port_busy "$port" && die "127.0.0.1:$port is already in use by another process; pick another port"
  if [[ ! -f $(data)/PG_VERSION ]]; then
    as_pg "$bin/initdb" -D "$(data)" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 \
      >"$PG_RUN/initdb.log" 2>&1 || { cat "$PG_RUN/initdb.log" >&2; die "initdb failed"; }
  fi
  if [[ -n $PG_ALLOW ]] && ! grep -q "^host all all $PG_ALLOW trust" "$(data)/pg_hba.conf"; then
    echo "host all all $PG_ALLOW trust" >>"$(data)/pg_hba.conf"
  fi
  echo "$port" >"$PG_RUN/port"
  # settings for a test server: loopback only, socket inside $PG_RUN, no fsync waits
  # (a crash of the machine is not what the tests simulate; a crash of the server is,
  # and the server's own WAL recovery still runs)
  (
    close_inherited_fds
    as_pg "$bin/pg_ctl" -D "$(data)" -l "$PG_RUN/server.log" -w -t 60 start -o \
      "-p $port -c listen_addresses=$PG_LISTEN -c unix_socket_directories=$PG_RUN \
       -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 \
       -c shared_buffers=128MB" >/dev/null
  ) || { tail -n 30 "$PG_RUN/server.log" >&2; die "the server did not start"; }
  as_pg "$bin/psql" -h "$PG_RUN" -p "$port" -U "$PG_USER" -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    as_pg "$bin/createdb" -h "$PG_RUN" -p "$port" -U "$PG_USER" "$DB"
  url "$port"
}

stop() {
  running || return 0
  as_pg "$(bindir)/pg_ctl" -D "$(data)" -m fast -w -t 60 stop >/dev/null
}

crash() {
  running || return 0
  as_pg "$(bindir)/pg_ctl" -D "$(data)" -m immediate -w -t 60 stop >/dev/null
}

cmd=${1:-}; shift || true
case $cmd in
  up)    up "$@" ;;
  stop)  bindir >/dev/null && stop; true ;;
  crash) crash ;;
  clean) bindir >/dev/null && stop; rm -rf "$PG_RUN" ;;
  url)   url "$@" ;;
  *)     sed -n '2,11p' "$0"; exit 2 ;;
esac
