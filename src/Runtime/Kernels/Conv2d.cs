namespace Compiled.Nets.Kernels;

// Dims: B batch, C in-channels, H×W input, O out-channels, KH×KW kernel, OH×OW output.
// Bias is not applied here: the generated code adds it in the fused elementwise epilogue that follows.
public static class Conv2dKernels
{
    /// <summary>Floats of scratch memory Forward/Backward need for this geometry (im2col panels etc.).</summary>
    public static long ScratchSize(in Conv2dGeometry g) => throw new NotImplementedException();

    /// <summary>y[B,O,OH,OW] = conv(x[B,C,H,W], w[O,C,KH,KW]) (overwrites y).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch)
        => throw new NotImplementedException();

    /// <summary>
    /// Accumulates dx += dL/dx and dw += dL/dw from dy[B,O,OH,OW]. An empty dx or dw skips that gradient
    /// (first layer; frozen weight).
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry g, Span<float> scratch)
        => throw new NotImplementedException();
}
