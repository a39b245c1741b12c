using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    /// <summary>Elements one thread of a summing kernel adds before its single atomic add.</summary>
    internal const int SumChunk = 256;

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _add;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _addTo;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _rowSums;
    private Action<Index1D, ArrayView<float>, float>? _fill;

    /// <summary>x[i] = <paramref name="value"/> over <paramref name="n"/> elements (a mean's gradient).</summary>
    public void Fill(ArrayView<float> x, long n, float value)
    {
        if (n == 0) return;
        Need(x, n, nameof(x));
        _fill ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel);
        Launched();
        _fill(checked((int)n), x, value);
    }

    private static void FillKernel(Index1D i, ArrayView<float> x, float value) => x[i] = value;

    /// <summary>y = a + b over <paramref name="n"/> elements (the residual add).</summary>
    public void Add(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, long n)
    {
        if (n == 0) return;
        Need(y, n, nameof(y)); Need(a, n, nameof(a)); Need(b, n, nameof(b));
        _add ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel);
        Launched();
        _add(checked((int)n), y, a, b);
    }

    private static void AddKernel(Index1D i, ArrayView<float> y, ArrayView<float> a, ArrayView<float> b) => y[i] = a[i] + b[i];

    /// <summary>dst += src over <paramref name="n"/> elements (a gradient with several contributions).</summary>
    public void AddTo(ArrayView<float> dst, ArrayView<float> src, long n)
    {
        if (n == 0) return;
        Need(dst, n, nameof(dst)); Need(src, n, nameof(src));
        _addTo ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(AddToKernel);
        Launched();
        _addTo(checked((int)n), dst, src);
    }

    private static void AddToKernel(Index1D i, ArrayView<float> dst, ArrayView<float> src) => dst[i] += src[i];

    /// <summary>sums[r] += Σ_q x[r·cols + q] for r &lt; rows (a convolution's bias gradient): each thread adds a chunk
    /// of a row, then one atomic add per chunk.</summary>
    public void AddRowSums(ArrayView<float> sums, ArrayView<float> x, int rows, int cols)
    {
        if (rows == 0 || cols == 0) return;
        Need(sums, rows, nameof(sums)); Need(x, (long)rows * cols, nameof(x));
        _rowSums ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(RowSumsKernel);
        Launched();
        _rowSums(checked(rows * Groups(cols, SumChunk)), sums, x, rows, cols);
    }

    private static void RowSumsKernel(Index1D index, ArrayView<float> sums, ArrayView<float> x, int rows, int cols)
    {
        int chunks = (cols + SumChunk - 1) / SumChunk;
        int r = index / chunks, q0 = index % chunks * SumChunk;
        int q1 = q0 + SumChunk < cols ? q0 + SumChunk : cols;
        float s = 0f;
        long row = (long)r * cols;
        for (int q = q0; q < q1; q++) s += x[row + q];
        Atomic.Add(ref sums[r], s);
    }
}
