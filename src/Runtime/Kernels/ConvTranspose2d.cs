namespace Compiled.Nets.Kernels;

/// <summary>
/// Transposed convolution (nn.ConvTranspose2d) as the adjoint of the convolution <c>conv</c> that maps its output's
/// shape back onto its input's: PyTorch's weight [InChannels, OutChannels, KH, KW] is exactly that convolution's
/// [O, C, KH, KW], so forward is the convolution's input gradient, the input gradient its forward, and the weight
/// gradient its weight gradient with the roles of input and output gradient exchanged. The GEMM, Winograd and direct
/// kernels of Conv2dKernels do the work.
/// </summary>
public static class ConvTranspose2dKernels
{
    /// <summary>Scratch for <see cref="Forward"/> and <see cref="Backward"/>.</summary>
    public static long ScratchSize(in Conv2dGeometry conv) => Conv2dKernels.ScratchSize(conv);

    /// <summary>y [B, conv.InChannels, conv.InHeight, conv.InWidth] = convᵀ(x) + bias per channel (overwrites y); x is
    /// [B, conv.OutChannels, conv.OutHeight, conv.OutWidth].</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, in Conv2dGeometry conv, Span<float> scratch)
    {
        // The convolution's input gradient for "dy" = x. Its own input (passed as y, the same size) is read only for a
        // weight gradient, which is not asked for here.
        Conv2dKernels.Backward(y, default, x, y, w, conv, scratch, accumulateDx: false);
        if (bias.IsEmpty) return;
        int plane = conv.InHeight * conv.InWidth;
        for (int b = 0; b < conv.Batch; b++)
            for (int c = 0; c < conv.InChannels; c++)
                System.Numerics.Tensors.TensorPrimitives.Add(y.Slice((b * conv.InChannels + c) * plane, plane), bias[c], y.Slice((b * conv.InChannels + c) * plane, plane));
    }

    /// <summary>
    /// dx (+)= conv(dy) and dw += the weight gradient (an empty span is skipped; the bias gradient, a per-channel sum of
    /// dy, is the caller's). Adding to dx goes through <paramref name="temporary"/> (B × conv.OutSize floats).
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, in Conv2dGeometry conv,
        Span<float> scratch, Span<float> temporary, bool accumulateDx)
    {
        // dw: the convolution's weight gradient with dy as its input and x as its output gradient.
        if (!dw.IsEmpty) Conv2dKernels.Backward(default, dw, x, dy, w, conv, scratch, accumulateDx: true);
        if (dx.IsEmpty) return;
        if (!accumulateDx) { Conv2dKernels.Forward(dx, dy, w, default, conv, scratch); return; }
        int n = conv.Batch * conv.OutSize;
        if (temporary.Length < n) throw new ArgumentException($"ConvTranspose2d backward: the temporary has {temporary.Length} floats, {n} needed.");
        Conv2dKernels.Forward(temporary[..n], dy, w, default, conv, scratch);
        Elementwise.AddInPlace(dx[..n], temporary[..n]);
    }
}
