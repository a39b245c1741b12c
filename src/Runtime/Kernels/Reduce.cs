using System.Numerics.Tensors;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Sum and mean along one dimension (<c>x.sum(dim)</c>, <c>x.mean(dim)</c>): x is [outer, n, inner], y is [outer, inner]
/// (the reduced dimension dropped or kept as 1 is the same layout); scale is 1 for a sum, 1/n for a mean.
/// </summary>
public static class ReduceKernels
{
    /// <summary>y[o, i] = scale · Σ_k x[o, k, i].</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int outer, int n, int inner, float scale)
    {
        Check(y.Length, x.Length, outer, n, inner);
        for (int o = 0; o < outer; o++)
        {
            var row = y.Slice(o * inner, inner);
            var block = x.Slice(o * n * inner, n * inner);
            if (inner == 1) { row[0] = scale * TensorPrimitives.Sum(block); continue; }
            block.Slice(0, inner).CopyTo(row);
            for (int k = 1; k < n; k++) TensorPrimitives.Add(row, block.Slice(k * inner, inner), row);
            if (scale != 1f) TensorPrimitives.Multiply(row, scale, row);
        }
    }

    /// <summary>dx[o, k, i] += scale · dy[o, i] for every k.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int outer, int n, int inner, float scale)
    {
        Check(dy.Length, dx.Length, outer, n, inner);
        for (int o = 0; o < outer; o++)
        {
            var g = dy.Slice(o * inner, inner);
            var block = dx.Slice(o * n * inner, n * inner);
            if (inner == 1) { TensorPrimitives.Add(block, scale * g[0], block); continue; }
            for (int k = 0; k < n; k++)
            {
                var d = block.Slice(k * inner, inner);
                TensorPrimitives.MultiplyAdd(g, scale, d, d);
            }
        }
    }

    /// <summary>Generic loops of the same sums, for the double-precision tests.</summary>
    public static class Reference
    {
        /// <summary>y[o, i] = scale · Σ_k x[o, k, i].</summary>
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, int outer, int n, int inner, T scale) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            Check(y.Length, x.Length, outer, n, inner);
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    T sum = T.Zero;
                    for (int k = 0; k < n; k++) sum += x[(o * n + k) * inner + i];
                    y[o * inner + i] = scale * sum;
                }
        }

        /// <summary>dx[o, k, i] += scale · dy[o, i].</summary>
        public static void Backward<T>(Span<T> dx, ReadOnlySpan<T> dy, int outer, int n, int inner, T scale) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            Check(dy.Length, dx.Length, outer, n, inner);
            for (int o = 0; o < outer; o++)
                for (int k = 0; k < n; k++)
                    for (int i = 0; i < inner; i++) dx[(o * n + k) * inner + i] += scale * dy[o * inner + i];
        }
    }

    private static void Check(int y, int x, int outer, int n, int inner)
    {
        if (outer < 0 || n <= 0 || inner <= 0) throw new ArgumentException($"Reduce: outer {outer}, n {n} and inner {inner} must be positive.");
        if (x < (long)outer * n * inner || y < (long)outer * inner)
            throw new ArgumentException($"Reduce: [{outer}, {n}, {inner}] → [{outer}, {inner}] needs {(long)outer * n * inner} and {(long)outer * inner} values; got {x} and {y}.");
    }
}
