#!/usr/bin/env bash
# device2.sh — the member box of the two-box demo. Reads the pool from .pool-info (written by
# device1.sh) or asks for it, creates this device's identity and records the pool (once: a second
# run reuses both), starts the agent, waits up to 60 s for the certificate from the admin's agent
# over the LAN and then for the ring, and keeps the agent in the foreground. Ctrl+C stops it.
#
# .pool-info is looked for in $POOL_INFO, ./.pool-info, then $MESH_HOME/.pool-info.
#
# Environment (defaults in brackets):
#   MESH_HOME     state directory [~/.meshnet]
#   DEVICE_NAME   this device's name [device2]
#   NETWORK_ID    network id for `mesh init` [.pool-info's, else asked, default test-network]
#   POOL_NAME     local name of the pool [.pool-info's, else asked, default test-pool]
#   POOL_INFO     the pool info file to read
#   CERT_WAIT     seconds to wait for the certificate [60]
set -euo pipefail

NAME=device2.sh
# shellcheck source=scripts/demo-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/demo-lib.sh"

DEVICE_NAME="${DEVICE_NAME:-device2}"
CERT_WAIT="${CERT_WAIT:-60}"
[[ "$CERT_WAIT" =~ ^[0-9]+$ ]] || die "CERT_WAIT=$CERT_WAIT is not a whole number of seconds"
check_no_agent

# KEY=VALUE lines, read as data (never sourced: the file came from another machine)
declare -A info=()
read_info() {
  local key value
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^([A-Z_]+)=(.*)$ ]] || die "$1: line \"$line\" is not KEY=VALUE; copy the file device1.sh wrote again"
    key="${BASH_REMATCH[1]}"; value="${BASH_REMATCH[2]}"
    info[$key]="$value"
  done <"$1"
  for key in POOL_ID POOL_ROOT_PUBKEY; do
    [ -n "${info[$key]:-}" ] || die "$1 has no $key; copy the file device1.sh wrote again"
  done
}

ask() { # ask PROMPT DEFAULT → answer (or DEFAULT when empty)
  local answer
  read -r -p "$1${2:+ [$2]}: " answer || die "no answer for \"$1\" (end of input)"
  printf '%s' "${answer:-$2}"
}

source_file=""
for f in "${POOL_INFO:-}" ./.pool-info "$MESH_HOME/.pool-info"; do
  if [ -n "$f" ] && [ -f "$f" ]; then source_file="$f"; break; fi
done
if [ -n "${POOL_INFO:-}" ] && [ "$source_file" != "$POOL_INFO" ]; then die "POOL_INFO=$POOL_INFO does not exist"; fi
if [ -n "$source_file" ]; then
  read_info "$source_file"
  say "pool info from $source_file"
elif [ -t 0 ]; then
  info[POOL_ID]="$(ask 'Pool ID' '')"
  info[POOL_ROOT_PUBKEY]="$(ask 'Pool Root Public Key' '')"
  info[JOIN_TOKEN]="$(ask 'Join token' '')"
  info[POOL_NAME]="$(ask 'Pool name' test-pool)"
  info[NETWORK_ID]="$(ask 'Network ID' test-network)"
else
  die "no .pool-info (looked at \$POOL_INFO, ./.pool-info, $MESH_HOME/.pool-info) and no terminal to ask on; copy the file device1.sh wrote here"
fi
pool_id="${info[POOL_ID]}"
[[ "$pool_id" =~ ^[0-9a-f]{64}$ ]] || die "Pool ID \"$pool_id\" is not 64 hex digits; copy it in full from device1.sh's output"
NETWORK_ID="${NETWORK_ID:-${info[NETWORK_ID]:-test-network}}"
POOL_NAME="${POOL_NAME:-${info[POOL_NAME]:-test-pool}}"

ensure_device "$NETWORK_ID" "$DEVICE_NAME"

pool_file="$MESH_HOME/pools/$pool_id.json"
if [ -f "$pool_file" ]; then
  say "pool ${pool_id:0:16} already recorded (keeping it)"
else
  # the admin through its relay too: the certificate comes over libp2p where no beacon crosses a router
  bootstrap_flags=()
  read -r -a admin_relayed <<<"${info[ADMIN_RELAYED]:-}"
  for a in ${admin_relayed[@]+"${admin_relayed[@]}"}; do bootstrap_flags+=(--bootstrap "$a"); done
  mesh pool-join --pool-id "$pool_id" --pool-root-pubkey="${info[POOL_ROOT_PUBKEY]}" --name "$POOL_NAME" \
    ${info[JOIN_TOKEN]:+--token="${info[JOIN_TOKEN]}"} ${bootstrap_flags[@]+"${bootstrap_flags[@]}"} >/dev/null || die "mesh pool-join failed (see above)"
  say "recorded pool ${pool_id:0:16} \"$POOL_NAME\""
fi

# the admin's relay: reached when the admin (or another member) cannot be dialled directly
relay_flags=()
read -r -a relays <<<"${info[RELAY]:-}"
for a in ${relays[@]+"${relays[@]}"}; do relay_flags+=(--relay "$a"); done
# and its control plane: the members are found there when beacons do not reach
cp_flags=()
[ -n "${info[CONTROL_PLANE]:-}" ] && cp_flags=(--control-plane "${info[CONTROL_PLANE]}")
run_agent ${relay_flags[@]+"${relay_flags[@]}"} ${cp_flags[@]+"${cp_flags[@]}"}

# the agent installs the certificate in the pool file; the ring file lists the members it agreed on
has_cert() { grep -q '"state": "member"' "$pool_file" 2>/dev/null; }
ring_size() { grep -c '"nodeId"' "$MESH_HOME/ring_topology_$pool_id.json" 2>/dev/null || true; }
for ((i = 0; i < CERT_WAIT * 10; i++)); do
  has_cert && break
  kill -0 "$agent_pid" 2>/dev/null || wait_agent
  sleep 0.1
done
has_cert || die "no certificate for pool ${pool_id:0:16} within $CERT_WAIT s; check that device1.sh runs on this LAN and the join token is right (its log says why it refused: $MESH_HOME/logs/agent.log there)"
say "certificate received (+$(elapsed) s)"
for ((i = 0; i < 300; i++)); do
  if [ "$(ring_size)" -ge 2 ] 2>/dev/null; then say "ring ready: $(ring_size) members (+$(elapsed) s); see mesh ring-status. Ctrl+C stops the agent."; break; fi
  kill -0 "$agent_pid" 2>/dev/null || wait_agent
  sleep 0.1
done
[ "$(ring_size)" -ge 2 ] 2>/dev/null || say "the ring has no other member after 30 s; the agent keeps trying (mesh ring-status, $MESH_HOME/logs/agent.log)"
wait_agent
