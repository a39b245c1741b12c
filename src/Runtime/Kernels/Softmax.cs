namespace Compiled.Nets.Kernels;

// Dims: N rows, K columns (softmax over the last dimension).
public static class SoftmaxKernels
{
    /// <summary>y = softmax(x) per row, max-subtracted for stability.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols) => throw new NotImplementedException();

    /// <summary>dx += y ⊙ (dy − Σ dy⊙y) per row.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols) => throw new NotImplementedException();
}
