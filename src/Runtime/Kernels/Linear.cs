using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: N rows (batch, or batch×tokens), I in-features, O out-features. Weight in PyTorch layout [O, I].
// Bias is not applied here: the generated code adds it in the fused elementwise epilogue.
public static class LinearKernels
{
    /// <summary>y[N,O] = x[N,I] · w[O,I]ᵀ (overwrites y).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures)
        => Gemm.Sgemm(false, true, rows, outFeatures, inFeatures, 1f, x, inFeatures, w, inFeatures, 0f, y, outFeatures);

    /// <summary>
    /// y[N,O] = x·wᵀ reading <paramref name="wBFloat16"/>, the weights rounded to bfloat16, when it is not empty and N
    /// is at most 4 (batch-1..4 inference streams the weights once, so half the bytes is nearly half the time); the
    /// float32 weights <paramref name="w"/> otherwise. Generated inference passes
    /// <see cref="ParameterStore.BFloat16Value"/>, which is empty unless the store was made read-only for bfloat16.
    /// </summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<ushort> wBFloat16, int rows, int inFeatures, int outFeatures)
    {
        if (wBFloat16.IsEmpty || rows > MaxBFloat16Rows) { Forward(y, x, w, rows, inFeatures, outFeatures); return; }
        if (wBFloat16.Length != w.Length)
            throw new ArgumentException($"Linear: the bfloat16 weights hold {wBFloat16.Length} values, the float32 ones {w.Length}.", nameof(wBFloat16));
        Gemm.SkinnyBFloat16(rows, outFeatures, inFeatures, x, wBFloat16, y);
    }

    /// <summary>Batches up to this size read bfloat16 weights when given (larger ones are bound by arithmetic, not reads).</summary>
    public const int MaxBFloat16Rows = 4;

    /// <summary>
    /// dx[N,I] += dy·w; dw[O,I] += dyᵀ·x. Empty dx/dw skip that gradient. With <paramref name="accumulateDx"/> or
    /// <paramref name="accumulateDw"/> false that gradient is overwritten (the GEMM's beta = 0), so the caller need not
    /// clear it first.
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures,
        bool accumulateDx = true, bool accumulateDw = true)
    {
        if (!dx.IsEmpty) Gemm.Sgemm(false, false, rows, inFeatures, outFeatures, 1f, dy, outFeatures, w, inFeatures, accumulateDx ? 1f : 0f, dx, inFeatures);
        if (!dw.IsEmpty) Gemm.Sgemm(true, false, outFeatures, inFeatures, rows, 1f, dy, outFeatures, x, inFeatures, accumulateDw ? 1f : 0f, dw, inFeatures);
    }

    /// <summary>y[N,O] = x·wᵀ + bias (overwrites y): a projection whose bias is not fused into a following loop.</summary>
    public static void ForwardBias(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int rows, int inFeatures, int outFeatures)
    {
        if (bias.Length < outFeatures) throw new ArgumentException($"Linear: bias has {bias.Length} floats, needs {outFeatures}.");
        Forward(y, x, w, rows, inFeatures, outFeatures);
        Elementwise.AddToEachRow(y, y, bias, rows, outFeatures);
    }

    /// <summary>db[O] += Σ over rows of dy[N,O] (an empty db does nothing).</summary>
    public static void BiasBackward(Span<float> db, ReadOnlySpan<float> dy, int rows, int outFeatures)
    {
        if (!db.IsEmpty) Elementwise.AddRowsInto(db, dy, rows, outFeatures);
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        /// <summary>y = x·wᵀ.</summary>
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> w, int rows, int inFeatures, int outFeatures) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            for (int o = 0; o < outFeatures; o++)
            {
                T s = T.Zero;
                for (int i = 0; i < inFeatures; i++) s += x[n * inFeatures + i] * w[o * inFeatures + i];
                y[n * outFeatures + o] = s;
            }
        }

        /// <summary>dx += dy·w, dw += dyᵀ·x.</summary>
        public static void Backward<T>(Span<T> dx, Span<T> dw, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, int rows, int inFeatures, int outFeatures) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            for (int o = 0; o < outFeatures; o++)
            {
                T d = dy[n * outFeatures + o];
                for (int i = 0; i < inFeatures; i++)
                {
                    if (!dx.IsEmpty) dx[n * inFeatures + i] += d * w[o * inFeatures + i];
                    if (!dw.IsEmpty) dw[o * inFeatures + i] += d * x[n * inFeatures + i];
                }
            }
        }
    }
}
