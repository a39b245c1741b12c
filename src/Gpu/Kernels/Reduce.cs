using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, float>? _reduce, _reduceBackward;

    /// <summary>y[o, i] = scale · Σ_k x[o, k, i] (Sum and Mean along one dimension: x is [outer, n, inner]); one thread per output.</summary>
    public void ReduceForward(ArrayView<float> y, ArrayView<float> x, int outer, int n, int inner, float scale)
    {
        Need(y, (long)outer * inner, nameof(y)); Need(x, (long)outer * n * inner, nameof(x));
        _reduce ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, float>(ReduceKernel);
        Launched(); _reduce(checked(outer * inner), y, x, n, inner, scale);
    }

    /// <summary>dx[o, k, i] += scale · dy[o, i]; one thread per input element.</summary>
    public void ReduceBackward(ArrayView<float> dx, ArrayView<float> dy, int outer, int n, int inner, float scale)
    {
        Need(dy, (long)outer * inner, nameof(dy)); Need(dx, (long)outer * n * inner, nameof(dx));
        _reduceBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, float>(ReduceBackwardKernel);
        Launched(); _reduceBackward(checked(outer * n * inner), dx, dy, n, inner, scale);
    }

    private static void ReduceKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, int n, int inner, float scale)
    {
        int at = index;
        long o = at / inner, i = at % inner;
        float sum = 0f;
        for (int k = 0; k < n; k++) sum += x[(o * n + k) * inner + i];
        y[at] = scale * sum;
    }

    private static void ReduceBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, int n, int inner, float scale)
    {
        int at = index;
        long o = at / ((long)n * inner), i = at % inner;
        dx[at] += scale * dy[o * inner + i];
    }
}
