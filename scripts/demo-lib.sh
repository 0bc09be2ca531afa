# Shared by device1.sh and device2.sh (sourced, not run). They run this checkout's built commands
# (`node dist/...`), so they work the same before and after scripts/install.sh and never pick up
# another `mesh` that happens to be on PATH.
#
# Expects NAME (the script's name, for messages) to be set by the caller.

die() { echo "$NAME: $*" >&2; exit 1; }
say() { echo "$NAME: $*"; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MESH_JS="$repo/dist/cli/mesh.js"
RELAY_JS="$repo/dist/relay/main.js"
CONTROL_PLANE_JS="$repo/dist/control-plane/main.js"

command -v node >/dev/null 2>&1 || die "node is not on PATH; install Node.js 20.19 or newer (or run scripts/install.sh)"
for f in "$MESH_JS" "$RELAY_JS" "$CONTROL_PLANE_JS"; do
  [ -f "$f" ] || die "$f is missing: build this checkout first (scripts/install.sh, or npm ci && npm run build)"
done

export MESH_HOME="${MESH_HOME:-$HOME/.meshnet}"
mkdir -p -m 700 "$MESH_HOME" || die "cannot create MESH_HOME=$MESH_HOME; pick a writable directory"
mkdir -p "$MESH_HOME/logs" "$MESH_HOME/run"

mesh() { node "$MESH_JS" "$@"; }

# json EXPR: print EXPR evaluated over the JSON document on stdin (bound to j); nothing if null/undefined
json() {
  node -e '
    let s = ""
    process.stdin.on("data", (d) => { s += d }).on("end", () => {
      const v = new Function("j", `return (${process.argv[1]})`)(JSON.parse(s))
      if (v !== undefined && v !== null) process.stdout.write(String(v))
    })' "$1"
}

# seconds since the script started, one decimal (bash 5's EPOCHREALTIME; whole seconds elsewhere)
t0="${EPOCHREALTIME:-$(date +%s)}"
elapsed() { awk -v a="$t0" -v b="${EPOCHREALTIME:-$(date +%s)}" 'BEGIN { printf "%.1f", b - a }'; }

check_port() { # check_port NAME VALUE
  [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= 1 && $2 <= 65535 )) || die "$1=$2 is not a port number (1-65535)"
}

# an agent of this MESH_HOME already running would make `mesh start` fail after everything else started
check_no_agent() {
  local pid
  pid="$(cat "$MESH_HOME/run/agent.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 0
  # a pid left by a crash may belong to something else by now: where /proc tells, it must be mesh
  if [ ! -d /proc/self ] || grep -q mesh "/proc/$pid/cmdline" 2>/dev/null; then
    die "an agent already runs for MESH_HOME=$MESH_HOME (pid $pid); stop it first (Ctrl+C in its terminal, or: MESH_HOME=$MESH_HOME node $MESH_JS stop)"
  fi
}

ensure_device() { # ensure_device NETWORK_ID DEVICE_NAME
  if [ -f "$MESH_HOME/config.json" ]; then
    say "device already initialised in $MESH_HOME (keeping its identity)"
  else
    mesh init --network-id "$1" --name "$2" >/dev/null || die "mesh init failed (see above)"
    say "initialised device \"$2\" on network $1 in $MESH_HOME"
  fi
}

# background processes to stop on exit, agent first so its goodbye still reaches the ring
children=()
stop_children() {
  trap - EXIT INT TERM
  local pid
  for pid in ${children[@]+"${children[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${children[@]+"${children[@]}"}; do wait "$pid" 2>/dev/null || true; done
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_agent ARGS...: `mesh start --foreground ARGS` as a child, so Ctrl+C reaches our trap at once
run_agent() {
  # node itself, not the mesh() function: that would put a subshell between our trap and the agent
  node "$MESH_JS" start --foreground "$@" &
  agent_pid=$!
  children=("$agent_pid" ${children[@]+"${children[@]}"})
}

# wait for the agent to end; exit with its status
wait_agent() {
  local code=0
  wait "$agent_pid" || code=$?
  children=(${children[@]+"${children[@]:1}"})
  exit "$code"
}
