using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? _softmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _softmaxBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>? _softmaxAlong;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _softmaxAlongBackward;

    /// <summary>
    /// y = softmax (or log-softmax when <paramref name="log"/>) of x [outer, size, inner] along its middle dimension,
    /// one thread per (outer, inner) column. With <paramref name="masked"/> the middle dimension is a sequence
    /// (outer = the batch, size = T): only the positions whose <paramref name="mask"/> entry is 1 share the probability,
    /// padding gets 0, as on the CPU.
    /// </summary>
    public void SoftmaxAlong(ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, bool masked, int outer, int size, int inner, bool log)
    {
        long n = (long)outer * size * inner;
        Need(y, n, nameof(y)); Need(x, n, nameof(x));
        if (masked) Need(mask, (long)outer * size, nameof(mask));
        _softmaxAlong ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(SoftmaxAlongKernel);
        Launched(); _softmaxAlong(checked(outer * inner), y, x, mask, size, inner, (log ? 1 : 0) | (masked ? 2 : 0));
    }

    /// <summary>dx += the gradient of <see cref="SoftmaxAlong"/> from its output y (padding's y is 0, so it gets none).</summary>
    public void SoftmaxAlongBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int outer, int size, int inner, bool log)
    {
        long n = (long)outer * size * inner;
        Need(dx, n, nameof(dx)); Need(dy, n, nameof(dy)); Need(y, n, nameof(y));
        _softmaxAlongBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(SoftmaxAlongBackwardKernel);
        Launched(); _softmaxAlongBackward(checked(outer * inner), dx, dy, y, size, inner, log ? 1 : 0);
    }

    private static void SoftmaxAlongKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, int size, int inner, int flags)
    {
        int at = index;
        int o = at / inner;
        long start = (long)o * size * inner + at % inner;
        bool masked = (flags & 2) != 0;
        float max = float.NegativeInfinity;
        for (int k = 0; k < size; k++) if (!masked || mask[o * size + k] != 0) max = XMath.Max(max, x[start + (long)k * inner]);
        float sum = 0f;
        for (int k = 0; k < size; k++) if (!masked || mask[o * size + k] != 0) sum += XMath.Exp(x[start + (long)k * inner] - max);
        float logSum = XMath.Log(sum) + max;
        for (int k = 0; k < size; k++)
        {
            long i = start + (long)k * inner;
            float lp = x[i] - logSum;
            y[i] = masked && mask[o * size + k] == 0 ? 0f : (flags & 1) != 0 ? lp : XMath.Exp(lp);
        }
    }

    private static void SoftmaxAlongBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int size, int inner, int log)
    {
        int at = index;
        long start = (long)(at / inner) * size * inner + at % inner;
        float dot = 0f;
        for (int k = 0; k < size; k++) { long i = start + (long)k * inner; dot += log != 0 ? dy[i] : dy[i] * y[i]; }
        for (int k = 0; k < size; k++)
        {
            long i = start + (long)k * inner;
            dx[i] += log != 0 ? dy[i] - XMath.Exp(y[i]) * dot : y[i] * (dy[i] - dot);
        }
    }

    /// <summary>y = softmax(x) (or log-softmax when <paramref name="log"/>) over the last dimension, one group per row.</summary>
    public void SoftmaxForward(ArrayView<float> y, ArrayView<float> x, int rows, int cols, bool log)
    {
        long n = (long)rows * cols;
        Need(y, n, nameof(y)); Need(x, n, nameof(x));
        if (rows == 0) return;
        _softmax ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(SoftmaxKernel);
        Launched(); _softmax(RowConfig(rows, cols), y, x, cols, log ? 1 : 0);
    }

    /// <summary>dx += y·(dy − Σ dy·y) for softmax, dx += dy − exp(y)·Σ dy for log-softmax, from the output y.</summary>
    public void SoftmaxBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int rows, int cols, bool log)
    {
        long n = (long)rows * cols;
        Need(dx, n, nameof(dx)); Need(dy, n, nameof(dy)); Need(y, n, nameof(y));
        if (rows == 0) return;
        _softmaxBackward ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(SoftmaxBackwardKernel);
        Launched(); _softmaxBackward(RowConfig(rows, cols), dx, dy, y, cols, log ? 1 : 0);
    }

    /// <summary>Row Grid.IdxX, its threads taking every Group.DimX-th column.</summary>
    private static void SoftmaxBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int cols, int log)
    {
        int first = Group.IdxX, step = Group.DimX;
        long row = (long)Grid.IdxX * cols;
        float s = 0f;
        for (int k = first; k < cols; k += step) s += log != 0 ? dy[row + k] : dy[row + k] * y[row + k];
        s = GroupSum(s);
        if (log != 0)
            for (int k = first; k < cols; k += step) dx[row + k] += dy[row + k] - XMath.Exp(y[row + k]) * s;
        else
            for (int k = first; k < cols; k += step) dx[row + k] += y[row + k] * (dy[row + k] - s);
    }

    private static void SoftmaxKernel(ArrayView<float> y, ArrayView<float> x, int cols, int log)
    {
        int first = Group.IdxX, step = Group.DimX;
        long row = (long)Grid.IdxX * cols;
        float max = float.NegativeInfinity;
        for (int k = first; k < cols; k += step) max = XMath.Max(max, x[row + k]);
        max = GroupMax(max);
        float sum = 0f;
        for (int k = first; k < cols; k += step) sum += XMath.Exp(x[row + k] - max);
        sum = GroupSum(sum);
        if (log != 0)
        {
            float logSum = XMath.Log(sum) + max;
            for (int k = first; k < cols; k += step) y[row + k] = x[row + k] - logSum;
        }
        else
            for (int k = first; k < cols; k += step) y[row + k] = XMath.Exp(x[row + k] - max) / sum;
    }
}
