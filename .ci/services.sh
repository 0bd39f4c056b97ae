# Throwaway PostgreSQL (and later Redis) servers on 127.0.0.1 for tests; sourced by .ci/run.
# Installs from Debian's packages when the machine lacks them.

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if [ -z "$(pg_bin)" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
}

# start_postgres PORT -> exports DESKFLEET_TEST_DATABASE_URL
start_postgres() {
  local port="$1" bin data
  ensure_postgres
  bin="$(pg_bin)"
  data="$(mktemp -d /tmp/deskfleet-pg.XXXXXX)"
  chown postgres:postgres "$data"
  runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  PG_DATA="$data"
  export DESKFLEET_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
  if [ -n "${PG_DATA:-}" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DATA"
    PG_DATA=""
  fi
}
