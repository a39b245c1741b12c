using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _add;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _addTo;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>? _rowSums;
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

    /// <summary>sums[r] += Σ_q x[r·cols + q] for r &lt; rows (a convolution's bias gradient, each sample's loss): one
    /// group per row, summed in a fixed order.</summary>
    public void AddRowSums(ArrayView<float> sums, ArrayView<float> x, int rows, int cols)
    {
        if (rows == 0 || cols == 0) return;
        Need(sums, rows, nameof(sums)); Need(x, (long)rows * cols, nameof(x));
        _rowSums ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(RowSumsKernel);
        Launched();
        _rowSums(SumConfig(rows, cols), sums, x, cols);
    }

    /// <summary>Row Grid.IdxX: each thread takes every Group.DimX-th value.</summary>
    private static void RowSumsKernel(ArrayView<float> sums, ArrayView<float> x, int cols)
    {
        int r = Grid.IdxX;
        long row = (long)r * cols;
        float s = 0f;
        for (int q = Group.IdxX; q < cols; q += Group.DimX) s += x[row + q];
        s = GroupSum(s);
        if (Group.IdxX == 0) sums[r] += s;
    }
}
