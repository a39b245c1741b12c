using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _softmax;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _softmaxBackward;

    /// <summary>y = softmax(x) (or log-softmax when <paramref name="log"/>) over the last dimension, one thread per row.</summary>
    public void SoftmaxForward(ArrayView<float> y, ArrayView<float> x, int rows, int cols, bool log)
    {
        long n = (long)rows * cols;
        Need(y, n, nameof(y)); Need(x, n, nameof(x));
        _softmax ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(SoftmaxKernel);
        Launched(); _softmax(rows, y, x, cols, log ? 1 : 0);
    }

    /// <summary>dx += y·(dy − Σ dy·y) for softmax, dx += dy − exp(y)·Σ dy for log-softmax, from the output y.</summary>
    public void SoftmaxBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int rows, int cols, bool log)
    {
        long n = (long)rows * cols;
        Need(dx, n, nameof(dx)); Need(dy, n, nameof(dy)); Need(y, n, nameof(y));
        _softmaxBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(SoftmaxBackwardKernel);
        Launched(); _softmaxBackward(rows, dx, dy, y, cols, log ? 1 : 0);
    }

    private static void SoftmaxBackwardKernel(Index1D r, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y, int cols, int log)
    {
        long row = (long)r.X * cols;
        float s = 0f;
        if (log != 0)
        {
            for (int k = 0; k < cols; k++) s += dy[row + k];
            for (int k = 0; k < cols; k++) dx[row + k] += dy[row + k] - XMath.Exp(y[row + k]) * s;
        }
        else
        {
            for (int k = 0; k < cols; k++) s += dy[row + k] * y[row + k];
            for (int k = 0; k < cols; k++) dx[row + k] += y[row + k] * (dy[row + k] - s);
        }
    }

    private static void SoftmaxKernel(Index1D r, ArrayView<float> y, ArrayView<float> x, int cols, int log)
    {
        long row = (long)r.X * cols;
        float max = float.NegativeInfinity;
        for (int k = 0; k < cols; k++) max = XMath.Max(max, x[row + k]);
        float sum = 0f;
        for (int k = 0; k < cols; k++) sum += XMath.Exp(x[row + k] - max);
        if (log != 0)
        {
            float logSum = XMath.Log(sum) + max;
            for (int k = 0; k < cols; k++) y[row + k] = x[row + k] - logSum;
        }
        else
            for (int k = 0; k < cols; k++) y[row + k] = XMath.Exp(x[row + k] - max) / sum;
    }
}
