namespace Compiled.Nets.Kernels;

// Dims: N rows (batch, or batch×tokens), I in-features, O out-features. Weight in PyTorch layout [O, I].
// Bias is not applied here: the generated code adds it in the fused elementwise epilogue.
public static class LinearKernels
{
    /// <summary>y[N,O] = x[N,I] · w[O,I]ᵀ (overwrites y).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures)
        => throw new NotImplementedException();

    /// <summary>dx[N,I] += dy·w; dw[O,I] += dyᵀ·x. Empty dx/dw skip that gradient.</summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures)
        => throw new NotImplementedException();
}
