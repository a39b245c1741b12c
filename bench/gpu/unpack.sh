#!/usr/bin/env bash
# Sourced by run.sh and test.sh: unpacks publish/gpu.tar.xz (bench/gpu/publish.sh) once into $app.
app="${TMPDIR:-/tmp}/compiled-nets-gpu/app"
archive="$(dirname "${BASH_SOURCE[0]}")/publish/gpu.tar.xz"
[ -f "$archive" ] || { echo "no $archive: run bash bench/gpu/publish.sh first, and carry bench/gpu/publish" >&2; exit 2; }
if [ ! -x "$app/Compiled.Nets.Bench.Gpu" ] || [ "$archive" -nt "$app" ]; then
  rm -rf "$app" && mkdir -p "$(dirname "$app")" && tar xJf "$archive" -C "$(dirname "$app")" && touch "$app"
fi
