#!/usr/bin/env bash
# On a GPU machine (PyTorch, no .NET): the published bench (bench/gpu/publish.sh) and PyTorch on the same GPU in one
# run, then PyTorch's time over ours. REPS sets the timed repetitions (default 50); TIMEOUT the seconds our bench may
# take (default 300: a kernel that hangs on the GPU ends the run, not the lease). TF32=1 lets both sides' matmuls use
# TF32 tensor cores (ours: MatmulPrecision.High; PyTorch: allow_tf32); the default is float32 on both.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup.sh
# Exit 3: a twin disagreed with its CPU network (printed above); PyTorch still runs, but those ratios mean nothing.
# Exit 4: a model threw (printed; the others ran and are in ours.json).
status=0
tf32=""
if [ "${TF32:-0}" = 1 ]; then tf32=--tf32; fi
timeout -s KILL "${TIMEOUT:-300}" "$app/Compiled.Nets.Bench.Gpu" --device cuda --reps "${REPS:-50}" --json ours.json $tf32 || status=$?
# Any other failure but a timeout (a crash included): once more with the batched products on the tiled kernel instead
# of cuBLAS's batched GEMMs, whose binding is ours rather than ILGPU.Algorithms'.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ] && [ "$status" -ne 137 ] && [ "${COMPILED_NETS_CUBLAS_BATCHED:-}" != off ]; then
  echo "The bench failed (exit $status); again with COMPILED_NETS_CUBLAS_BATCHED=off" >&2
  status=0
  COMPILED_NETS_CUBLAS_BATCHED=off timeout -s KILL "${TIMEOUT:-300}" "$app/Compiled.Nets.Bench.Gpu" --device cuda --reps "${REPS:-50}" --json ours.json $tf32 || status=$?
fi
# PyTorch writes each result as it goes, eager ones first: past TORCH_TIMEOUT (default 300 s; torch.compile may take
# minutes) it is stopped and the ratios cover what it measured by then.
rm -f torch.json
timeout -s KILL "${TORCH_TIMEOUT:-300}" python3 torch_bench.py --reps "${REPS:-50}" --json torch.json $tf32 || echo "PyTorch's bench stopped early (exit $?)" >&2
if [ -s torch.json ]; then python3 ratios.py ours.json torch.json; else echo "PyTorch measured nothing; no ratios" >&2; fi
exit "$status"
