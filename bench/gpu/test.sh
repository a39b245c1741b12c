#!/usr/bin/env bash
# On a GPU machine (no .NET needed): the GPU tests (tests/Compiled.Nets.Gpu.Tests, published by bench/gpu/publish.sh)
# with their device fixture on CUDA, so every library kernel, the generated fused kernels and the device twins are
# checked against the CPU runtime on the GPU itself. Left out: the PTX assembly test (it fetches ptxas from Debian) and
# the CUDA-shaped simulation's copy of the grouped kernel tests (the GPU runs the real thing). Extra arguments go to the
# xUnit v3 runner (e.g. -class "*KernelTests" -stopOnFail); COMPILED_NETS_TEST_DEVICE=cpu-accelerator tries the script
# without a GPU.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup.sh
# A kernel that hangs on the GPU (a barrier some threads never reach) ends the run after TIMEOUT seconds, not the lease.
COMPILED_NETS_TEST_DEVICE="${COMPILED_NETS_TEST_DEVICE:-cuda}" timeout -s KILL "${TIMEOUT:-300}" "$app/Compiled.Nets.Gpu.Tests" -noColor -noLogo \
  -class- "Compiled.Nets.Gpu.Tests.PtxCompilationTests" -class- "Compiled.Nets.Gpu.Tests.GroupedKernelTests+CudaShaped" "$@"
