#!/usr/bin/env bash
# Publishes the GPU bench self-contained for linux-x64 into bench/gpu/publish (a GPU machine may have no .NET).
# Single file, compressed: small enough to carry with the working tree (the device tool's 64 MiB limit).
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet publish bench/Compiled.Nets.Bench.Gpu -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
  -o bench/gpu/publish
du -sh bench/gpu/publish
