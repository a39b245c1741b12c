namespace Compiled.Nets.Kernels;

// Dims: B batch, C channels, H×W input, OH×OW output.
public static class PoolingKernels
{
    /// <summary>y = max over each window; argmax[B,C,OH,OW] gets the flat input index within the sample's channel plane (empty to skip, for inference).</summary>
    public static void MaxPool2dForward(Span<float> y, Span<int> argmax, ReadOnlySpan<float> x, in Pool2dGeometry g)
        => throw new NotImplementedException();

    /// <summary>dx[argmax] += dy.</summary>
    public static void MaxPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, in Pool2dGeometry g)
        => throw new NotImplementedException();

    /// <summary>y = mean over each window, padding counted (count_include_pad=True).</summary>
    public static void AvgPool2dForward(Span<float> y, ReadOnlySpan<float> x, in Pool2dGeometry g)
        => throw new NotImplementedException();

    /// <summary>dx += dy / (KH·KW) spread over each window.</summary>
    public static void AvgPool2dBackward(Span<float> dx, ReadOnlySpan<float> dy, in Pool2dGeometry g)
        => throw new NotImplementedException();
}
