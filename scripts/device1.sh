#!/usr/bin/env bash
# device1.sh — the admin box of the two-box demo. Starts the relay and the HTTP control plane in the
# background, creates this device's identity and a pool (once: a second run reuses both), prints the
# Pool ID, Pool Root Public Key and join token and writes them to MESH_HOME/.pool-info for
# device2.sh, then runs the agent in the foreground. Ctrl+C stops the agent, the control plane and
# the relay.
#
# Environment (defaults in brackets):
#   MESH_HOME           state directory [~/.meshnet]
#   NETWORK_ID          network id for `mesh init` [test-network]
#   DEVICE_NAME         this device's name [device1]
#   POOL_NAME           the pool to create or reuse [test-pool]
#   RELAY_PORT          TCP port of mesh-relay [4001]
#   CONTROL_PLANE_PORT  port of mesh-control-plane [first free of 8080-8179; when set, exactly this one]
set -euo pipefail

NAME=device1.sh
# shellcheck source=scripts/demo-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/demo-lib.sh"

NETWORK_ID="${NETWORK_ID:-test-network}"
DEVICE_NAME="${DEVICE_NAME:-device1}"
POOL_NAME="${POOL_NAME:-test-pool}"
RELAY_PORT="${RELAY_PORT:-4001}"
check_port RELAY_PORT "$RELAY_PORT"
if [ -n "${CONTROL_PLANE_PORT:-}" ]; then
  check_port CONTROL_PLANE_PORT "$CONTROL_PLANE_PORT"
  cp_port=(--port "$CONTROL_PLANE_PORT")
else
  cp_port=()
fi
check_no_agent

# start_daemon LABEL JS ARGS...: run a daemon that prints one JSON line on stdout once it listens;
# stderr goes to MESH_HOME/logs/LABEL.log beside its own log. Sets `ready` to that line.
start_daemon() {
  local label="$1" js="$2" out="$MESH_HOME/run/$1.json" log="$MESH_HOME/logs/$1.log" pid i
  shift 2
  rm -f "$out"
  node "$js" --home "$MESH_HOME" --json "$@" >"$out" 2>>"$log" &
  pid=$!
  children+=("$pid")
  for ((i = 0; i < 300; i++)); do
    if [ -s "$out" ]; then ready="$(head -n 1 "$out")"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      die "$label did not start: $(grep -E "^mesh-$label: " "$log" | tail -n 1 || tail -n 3 "$log") (log: $log)"
    fi
    sleep 0.1
  done
  die "$label did not report ready within 30 s; see $log"
}

start_daemon relay "$RELAY_JS" --port "$RELAY_PORT"
relay_peer="$(json j.peerId <<<"$ready")"
# the addresses other devices can dial: loopback only helps on this host
relay_addrs="$(json 'j.addresses.filter((a) => !a.startsWith("/ip4/127.")).map((a) => a.includes("/p2p/") ? a : `${a}/p2p/${j.peerId}`).join(" ")' <<<"$ready")"
say "relay $relay_peer on port $RELAY_PORT (log $MESH_HOME/logs/relay.log)"

start_daemon control-plane "$CONTROL_PLANE_JS" ${cp_port[@]+"${cp_port[@]}"}
cp_port_bound="$(json j.port <<<"$ready")"
# one URL per address the relay found: the same interfaces
cp_urls="$(for a in $relay_addrs; do ip="${a#/ip4/}"; echo "http://${ip%%/*}:$cp_port_bound"; done | sort -u | tr '\n' ' ')"
cp_urls="${cp_urls% }"
say "control plane on port $cp_port_bound (log $MESH_HOME/logs/control-plane.log)"

ensure_device "$NETWORK_ID" "$DEVICE_NAME"

# the pool: reuse this device's admin pool of that name, else create it
status="$(mesh pool-status --json)" || die "mesh pool-status failed (see above)"
pool="$(POOL_NAME="$POOL_NAME" json "JSON.stringify(j.pools.find((p) => p.role === 'admin' && p.name === process.env.POOL_NAME))" <<<"$status")"
if [ -z "$pool" ]; then
  created="$(mesh pool-create --name "$POOL_NAME" --json)" || die "mesh pool-create failed (see above)"
  pool_id="$(json j.poolId <<<"$created")"; root_key="$(json j.rootPublicKey <<<"$created")"; token="$(json j.joinToken <<<"$created")"
  say "created pool \"$POOL_NAME\""
else
  pool_id="$(json j.poolId <<<"$pool")"; root_key="$(json j.rootPublicKey <<<"$pool")"; token="$(json j.joinToken <<<"$pool")"
  say "reusing this device's pool \"$POOL_NAME\""
fi

# this device through each relay: what a device behind another NAT gives `mesh pool-join --bootstrap`
node_id="$(json j.nodeId <<<"$status")"
admin_relayed="$(for a in $relay_addrs; do echo "$a/p2p-circuit/p2p/$node_id"; done | tr '\n' ' ')"
admin_relayed="${admin_relayed% }"

info="$MESH_HOME/.pool-info"
umask_was="$(umask)"; umask 077 # the join token lets a device into the pool
cat >"$info.tmp" <<EOF
# written by scripts/device1.sh; copy this file to the joining device and run scripts/device2.sh there
POOL_ID=$pool_id
POOL_ROOT_PUBKEY=$root_key
JOIN_TOKEN=$token
POOL_NAME=$POOL_NAME
NETWORK_ID=$NETWORK_ID
RELAY=$relay_addrs
ADMIN_RELAYED=$admin_relayed
CONTROL_PLANE=${cp_urls%% *}
EOF
mv -f "$info.tmp" "$info"
umask "$umask_was"

cat <<EOF

Pool ID:              $pool_id
Pool Root Public Key: $root_key
Join token:           $token
Relay:                $relay_addrs
Admin via the relay:  $admin_relayed
Control plane:        $cp_urls

Written to $info. On the second device copy it next to you (or into its MESH_HOME) and run
scripts/device2.sh. Starting the agent; Ctrl+C stops it, the control plane and the relay.

EOF

# the agent reserves a slot on our relay and advertises it, for members that cannot dial it directly
relay_flags=()
for a in $relay_addrs; do relay_flags+=(--relay "$a"); done
# and registers with our control plane, where members without beacons find it
run_agent ${relay_flags[@]+"${relay_flags[@]}"} --control-plane "http://127.0.0.1:$cp_port_bound"
wait_agent
