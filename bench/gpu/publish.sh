#!/usr/bin/env bash
# Publishes the GPU bench and the GPU tests (an xUnit v3 executable) self-contained for linux-x64 into one folder — a
# GPU machine may have no .NET — and packs it as bench/gpu/publish/gpu.tar.xz, small enough to carry with the working
# tree (the device tool's 64 MiB limit). run.sh and test.sh unpack it on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/gpu/publish
rm -rf "$out"
for project in bench/Compiled.Nets.Bench.Gpu tests/Compiled.Nets.Gpu.Tests; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained -o "$out/app"
done
tar cJf "$out/gpu.tar.xz" -C "$out" app
rm -rf "$out/app"
du -sh "$out/gpu.tar.xz"
