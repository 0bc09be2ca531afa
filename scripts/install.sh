#!/usr/bin/env bash
# Install mesh from this checkout: check Node, install dependencies, build, link `mesh`, `mesh-relay`
# and `mesh-control-plane` into ~/.local/bin, and put ~/.local/bin on PATH in .bashrc/.zshrc once.
# Safe to run again: links are refreshed, rc files are not edited twice.
#
# Environment:
#   HOME                     where ~/.local/bin and the rc files are (tests use a temporary one)
#   MESH_INSTALL_SKIP_BUILD  1 = use the node_modules and dist/ already here (no npm ci, no build)
set -euo pipefail

NAME=install.sh
REQUIRED_NODE=20.19
BINS=(mesh mesh-relay mesh-control-plane)
MARKER='# added by mesh scripts/install.sh'

die() { echo "$NAME: $*" >&2; exit 1; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -n "${HOME:-}" ] || die "HOME is not set; set it to your home directory"

# Node ≥ 20.19: libp2p 3 and require(esm) need it
command -v node >/dev/null 2>&1 || die "node is not on PATH; install Node.js $REQUIRED_NODE or newer (https://nodejs.org)"
version="$(node -p 'process.versions.node' 2>/dev/null)" || die "node does not run; reinstall Node.js $REQUIRED_NODE or newer"
IFS=. read -r major minor _ <<<"$version"
if ! [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || (( major < 20 || (major == 20 && minor < 19) )); then
  die "Node.js $REQUIRED_NODE or newer is required (found $version); upgrade it (https://nodejs.org or your package manager)"
fi

cd "$repo"
if [ "${MESH_INSTALL_SKIP_BUILD:-}" = 1 ]; then
  echo "$NAME: using the existing node_modules and dist/ (MESH_INSTALL_SKIP_BUILD=1)"
else
  command -v npm >/dev/null 2>&1 || die "npm is not on PATH; it comes with Node.js"
  echo "$NAME: installing dependencies (npm ci)…"
  # onnxruntime-node would otherwise download CUDA libraries, and fail offline
  npm ci || die "npm ci failed (see above); check your network access to the npm registry"
  echo "$NAME: building…"
  npm run build || die "the build failed (see above)"
fi

targets=(dist/cli/mesh.js dist/relay/main.js dist/control-plane/main.js)
for t in "${targets[@]}"; do
  [ -f "$repo/$t" ] || die "$repo/$t is missing; run without MESH_INSTALL_SKIP_BUILD to build it"
done

bindir="$HOME/.local/bin"
mkdir -p "$bindir"
for i in "${!BINS[@]}"; do
  link="$bindir/${BINS[$i]}"
  # never replace something that is not ours
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    die "$link exists and is not a link made by this script; move it aside and run again"
  fi
  ln -sfn "$repo/${targets[$i]}" "$link"
done
echo "$NAME: installed ${BINS[*]} in $bindir"

# rc files to edit: those that exist, plus the one of the login shell; .bashrc if none
rcs=()
for rc in .bashrc .zshrc; do [ -f "$HOME/$rc" ] && rcs+=("$HOME/$rc"); done
case "$(basename "${SHELL:-}")" in
  zsh) [ -f "$HOME/.zshrc" ] || rcs+=("$HOME/.zshrc") ;;
  *) [ -f "$HOME/.bashrc" ] || rcs+=("$HOME/.bashrc") ;;
esac
for rc in "${rcs[@]}"; do
  if grep -qF "$MARKER" "$rc" 2>/dev/null; then
    continue
  fi
  # a file without a final newline would glue our line to its last one
  if [ -s "$rc" ] && [ -n "$(tail -c1 "$rc")" ]; then echo >>"$rc"; fi
  printf '%s\nexport PATH="$HOME/.local/bin:$PATH"\n' "$MARKER" >>"$rc"
  echo "$NAME: added ~/.local/bin to PATH in $rc"
done

case ":$PATH:" in
  *":$bindir:"*) echo "$NAME: done; try: mesh --help" ;;
  *) echo "$NAME: done; open a new shell (or run: export PATH=\"$bindir:\$PATH\"), then try: mesh --help" ;;
esac
