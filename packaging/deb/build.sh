#!/usr/bin/env bash
# Builds the Debian package of mailzone with cargo-deb (metadata: crates/cli/Cargo.toml,
# [package.metadata.deb]).
#
#   packaging/deb/build.sh [--binary PATH] [--output DIR] [--fast]
#
# 1. the binary: `cargo build --release -p mailzone --locked`, or the one given with --binary
#    (the tests package the debug build they already have instead of a second, release build);
# 2. the man pages and shell completions, made by running that binary (`mailzone man DIR`,
#    `mailzone completions bash|zsh|fish`) into <products>/assets/;
# 3. `cargo deb --no-build --strip`: the .deb in --output (default: target/debian/).
#
# A binary without the `man` or `completions` subcommand gives a package without them (the
# `without-manpages` variant), said clearly; any other failure stops the build.
# Needs cargo-deb: `cargo install cargo-deb --locked`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { echo "packaging/deb/build.sh: $*" >&2; exit 1; }

binary=""
output=""
fast=()
while (($#)); do
  case $1 in
    --binary) binary=$(realpath "${2:?--binary needs a path}"); shift 2 ;;
    --output) output=${2:?--output needs a directory}; shift 2 ;;
    --fast) fast=(--fast); shift ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

cargo deb --version > /dev/null 2>&1 || die "cargo-deb is missing: cargo install cargo-deb --locked"

# cargo-deb takes the binary and the generated assets from <target>/release/ (its
# `target/release/` prefix): the real target directory, or a staging one for --binary.
if [[ -n $binary ]]; then
  [[ -x $binary ]] || die "--binary $binary is not an executable file"
  target=$(mktemp -d)
  trap 'rm -rf "$target"' EXIT
  mkdir -p "$target/release"
  cp "$binary" "$target/release/mailzone"
else
  target=${CARGO_TARGET_DIR:-$ROOT/target}
  target=$(realpath -m "$target")
  (cd "$ROOT" && cargo build --release --locked -p mailzone)
fi
products=$target/release
output=${output:-$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/debian}
mkdir -p "$output"
output=$(realpath "$output")
mailzone=$products/mailzone

# --- man pages and completions -------------------------------------------------------------
assets=$products/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"

# True when the binary has subcommand $1 (clap lists it in `help`).
has_subcommand() {
  "$mailzone" help "$1" > /dev/null 2>&1
}

variant=()
if has_subcommand man && has_subcommand completions; then
  "$mailzone" man "$assets/man"
  compgen_ok=true
  "$mailzone" completions bash > "$assets/completions/mailzone.bash" || compgen_ok=false
  "$mailzone" completions zsh > "$assets/completions/_mailzone" || compgen_ok=false
  "$mailzone" completions fish > "$assets/completions/mailzone.fish" || compgen_ok=false
  $compgen_ok || die "mailzone completions failed"
  compgen -G "$assets/man/*.1" > /dev/null || die "mailzone man wrote no page into $assets/man"
  # Debian Policy §12.1: man pages are installed gzipped. cargo-deb compresses only the
  # assets it does not count as built products, and everything under target/release is.
  gzip -9n "$assets/man"/*.1
  echo "man pages: $(ls "$assets/man" | wc -l), completions: bash zsh fish"
else
  echo "NOTE: this mailzone has no 'man'/'completions' subcommand yet: the package is built" \
    "without man pages and completions (variant without-manpages)" >&2
  variant=(--variant without-manpages)
fi

# --- the package -----------------------------------------------------------------------------
cd "$ROOT"
CARGO_TARGET_DIR=$target cargo deb -p mailzone --no-build --strip "${variant[@]}" "${fast[@]}" \
  --output "$output" | tail -n 1
