using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: N rows, K columns (softmax over the last dimension).
public static class SoftmaxKernels
{
    /// <summary>y = softmax(x) per row, max-subtracted for stability.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols) => Reference.Forward(y, x, rows, cols);

    /// <summary>dx += y ⊙ (dy − Σ dy⊙y) per row.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols) => Reference.Backward(dx, dy, y, rows, cols);

    /// <summary>Generic loops shared by the float kernels and the double-precision tests.</summary>
    public static class Reference
    {
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, int rows, int cols) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            {
                var xr = x.Slice(n * cols, cols);
                var yr = y.Slice(n * cols, cols);
                T max = T.NegativeInfinity;
                foreach (var v in xr) max = T.Max(max, v);
                T sum = T.Zero;
                for (int k = 0; k < cols; k++) { yr[k] = T.Exp(xr[k] - max); sum += yr[k]; }
                T inv = T.One / sum;
                for (int k = 0; k < cols; k++) yr[k] *= inv;
            }
        }

        public static void Backward<T>(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<T> y, int rows, int cols) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            {
                T dot = T.Zero;
                for (int k = 0; k < cols; k++) dot += dy[n * cols + k] * y[n * cols + k];
                for (int k = 0; k < cols; k++) dx[n * cols + k] += y[n * cols + k] * (dy[n * cols + k] - dot);
            }
        }
    }
}
