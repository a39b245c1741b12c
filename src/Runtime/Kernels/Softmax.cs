using System.Numerics;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// Dims: N rows, K columns (softmax over the last dimension).
public static unsafe class SoftmaxKernels
{
    /// <summary>
    /// Softmax (or log-softmax) over a dimension that is not the last: x is [outer, size, inner] and each of the
    /// outer·inner fibres of <paramref name="size"/> values (inner apart) is normalised (<c>F.softmax(x, dim)</c>).
    /// </summary>
    /// <exception cref="ArgumentException">When a span is too short.</exception>
    public static void ForwardAlong(Span<float> y, ReadOnlySpan<float> x, int outer, int size, int inner, bool log)
    {
        CheckAlong(y.Length, x.Length, outer, size, inner);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int start = o * size * inner + i;
                float max = float.NegativeInfinity;
                for (int k = 0; k < size; k++) max = Math.Max(max, x[start + k * inner]);
                double sum = 0;
                for (int k = 0; k < size; k++) sum += Math.Exp(x[start + k * inner] - max);
                float logSum = (float)(Math.Log(sum) + max);
                for (int k = 0; k < size; k++)
                {
                    float lp = x[start + k * inner] - logSum;
                    y[start + k * inner] = log ? lp : MathF.Exp(lp);
                }
            }
    }

    /// <summary>
    /// Softmax over the sequence of x [batch, seq, inner] (<c>x.Softmax(1)</c>, attention pooling's weights): only the
    /// positions the mask keeps share the probability, padding gets 0 (as a masked_fill with −∞ before the softmax
    /// gives); an empty mask keeps every position. The gradient is <see cref="BackwardAlong"/>'s (padding's y is 0).
    /// </summary>
    public static void ForwardOverSequence(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<int> mask, int batch, int seq, int inner)
    {
        CheckAlong(y.Length, x.Length, batch, seq, inner);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < inner; i++)
            {
                int start = b * seq * inner + i;
                float max = float.NegativeInfinity;
                for (int t = 0; t < seq; t++) if (mask.IsEmpty || mask[b * seq + t] != 0) max = Math.Max(max, x[start + t * inner]);
                double sum = 0;
                for (int t = 0; t < seq; t++) if (mask.IsEmpty || mask[b * seq + t] != 0) sum += Math.Exp(x[start + t * inner] - max);
                float logSum = (float)(Math.Log(sum) + max);
                for (int t = 0; t < seq; t++) y[start + t * inner] = mask.IsEmpty || mask[b * seq + t] != 0 ? MathF.Exp(x[start + t * inner] - logSum) : 0f;
            }
    }

    /// <summary>dx += the gradient of <see cref="ForwardAlong"/> from its output y: y⊙(dy − Σdy⊙y), or for log-softmax dy − exp(y)·Σdy.</summary>
    public static void BackwardAlong(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int outer, int size, int inner, bool log)
    {
        CheckAlong(dx.Length, dy.Length, outer, size, inner);
        CheckAlong(y.Length, y.Length, outer, size, inner);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int start = o * size * inner + i;
                double dot = 0;
                for (int k = 0; k < size; k++) dot += log ? dy[start + k * inner] : (double)dy[start + k * inner] * y[start + k * inner];
                for (int k = 0; k < size; k++)
                {
                    int at = start + k * inner;
                    dx[at] += log ? dy[at] - MathF.Exp(y[at]) * (float)dot : y[at] * (dy[at] - (float)dot);
                }
            }
    }

    private static void CheckAlong(int a, int b, int outer, int size, int inner)
    {
        long need = (long)outer * size * inner;
        if (outer <= 0 || size <= 0 || inner <= 0 || a < need || b < need) throw new ArgumentException($"Softmax over [{outer}, {size}, {inner}] needs {need} values per span; got {a} and {b}.");
    }

    /// <summary>y = softmax(x) per row, max-subtracted for stability.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols)
    {
        Check(y.Length, x.Length, rows, cols);
        // Without AVX-512 the Vector512 code still runs, as two 256-bit halves (its multiply-adds unfused: RowOps.MultiplyAdd),
        // which beats the portable loops; those are for CPUs without 256-bit vectors.
        if (!Vector512.IsHardwareAccelerated && !Vector256.IsHardwareAccelerated) { Reference.Forward(y, x, rows, cols); return; }
        fixed (float* py = y) fixed (float* px = x)
            for (int n = 0; n < rows; n++)
            {
                float* xr = px + (long)n * cols, yr = py + (long)n * cols;
                float sum = RowOps.ExpShifted(yr, xr, cols, RowOps.Max(xr, cols));
                RowOps.Scale(yr, cols, 1f / sum);
            }
    }

    /// <summary>dx += y ⊙ (dy − Σ dy⊙y) per row.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols)
    {
        Check(dx.Length, dy.Length, rows, cols);
        Check(y.Length, y.Length, rows, cols);
        if (!Vector512.IsHardwareAccelerated && !Vector256.IsHardwareAccelerated) { Reference.Backward(dx, dy, y, rows, cols); return; }
        fixed (float* pdx = dx) fixed (float* pdy = dy) fixed (float* py = y)
            for (int n = 0; n < rows; n++)
            {
                long o = (long)n * cols;
                float* g = pdx + o, d = pdy + o, yr = py + o;
                float dot = RowOps.Dot(d, yr, cols);
                var dv = Vector512.Create(dot);
                int k = 0;
                for (; k + 16 <= cols; k += 16)
                    Vector512.Store(RowOps.MultiplyAdd(Vector512.Load(yr + k), Vector512.Load(d + k) - dv, Vector512.Load(g + k)), g + k);
                for (; k < cols; k++) g[k] += yr[k] * (d[k] - dot);
            }
    }

    private static void Check(int a, int b, int rows, int cols)
    {
        long need = (long)rows * cols;
        if (a < need || b < need) throw new ArgumentException($"Softmax over [{rows}, {cols}] needs {need} floats per span; got {a} and {b}.");
    }

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

/// <summary>log-softmax over the last dimension (<c>F.log_softmax(x, -1)</c>): y = x − max − log Σ e^(x − max).</summary>
public static unsafe class LogSoftmaxKernels
{
    /// <summary>y = log softmax(x) per row.</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols)
    {
        if (y.Length < (long)rows * cols || x.Length < (long)rows * cols) throw new ArgumentException($"LogSoftmax over [{rows}, {cols}] needs {(long)rows * cols} floats per span; got {y.Length} and {x.Length}.");
        fixed (float* py = y) fixed (float* px = x)
            for (int n = 0; n < rows; n++)
            {
                float* xr = px + (long)n * cols, yr = py + (long)n * cols;
                float max = RowOps.Max(xr, cols);
                float shift = max + MathF.Log(RowOps.ExpShifted(yr, xr, cols, max)); // the exponentials land in y, then are replaced
                var row = new Span<float>(yr, cols);
                System.Numerics.Tensors.TensorPrimitives.Subtract(new ReadOnlySpan<float>(xr, cols), shift, row);
            }
    }

    /// <summary>dx += dy − e^y · Σ dy per row (e^y is the softmax).</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols)
    {
        for (int n = 0; n < rows; n++)
        {
            var d = dy.Slice(n * cols, cols);
            var yr = y.Slice(n * cols, cols);
            var g = dx.Slice(n * cols, cols);
            float sum = System.Numerics.Tensors.TensorPrimitives.Sum(d);
            int k = 0;
            if (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated)
            {
                var sv = Vector512.Create(sum);
                for (; k + 16 <= cols; k += 16)
                {
                    var v = Vector512.Create(g.Slice(k, 16)) + Vector512.Create(d.Slice(k, 16)) - Vector512.Exp(Vector512.Create(yr.Slice(k, 16))) * sv;
                    v.CopyTo(g.Slice(k, 16));
                }
            }
            for (; k < cols; k++) g[k] += d[k] - MathF.Exp(yr[k]) * sum;
        }
    }
}
