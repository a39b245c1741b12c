#!/usr/bin/env bash
# Sourced by run.sh and test.sh on the GPU machine: unpacks publish/gpu.tar.xz (bench/gpu/publish.sh) once into $app,
# names the GPU, and points COMPILED_NETS_CUBLAS at the cuBLAS PyTorch's wheel brings, when the loader would not find
# it by name (our GEMMs then run on it too).
app="${TMPDIR:-/tmp}/compiled-nets-gpu/app"
archive="$(dirname "${BASH_SOURCE[0]}")/publish/gpu.tar.xz"
[ -f "$archive" ] || { echo "no $archive: run bash bench/gpu/publish.sh first, and carry bench/gpu/publish" >&2; exit 2; }
if [ ! -x "$app/Compiled.Nets.Bench.Gpu" ] || [ "$archive" -nt "$app" ]; then
  rm -rf "$app" && mkdir -p "$(dirname "$app")" && tar xJf "$archive" -C "$(dirname "$app")" && touch "$app"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
export COMPILED_NETS_CUBLAS="${COMPILED_NETS_CUBLAS:-$(python3 -c 'import nvidia.cublas as c; print(list(c.__path__)[0] + "/lib")' 2>/dev/null || true)}"
