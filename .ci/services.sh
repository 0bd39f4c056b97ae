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

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
}

# start_redis PORT -> exports DESKFLEET_TEST_REDIS_URL (and REDIS_PORT, REDIS_DIR for restarts)
start_redis() {
  REDIS_PORT="$1"
  ensure_redis
  REDIS_DIR="$(mktemp -d /tmp/deskfleet-redis.XXXXXX)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' \
    --appendonly no --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export REDIS_PORT REDIS_DIR
  export DESKFLEET_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

stop_redis() {
  if [ -n "${REDIS_DIR:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$REDIS_DIR"
    REDIS_DIR=""
  fi
}
