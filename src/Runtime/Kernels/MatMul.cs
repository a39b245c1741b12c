using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: G = batch × the leading per-sample dimensions, each a product [M, K] · [K, N] → [M, N] (torch.matmul on equal
// leading dimensions). Row-major, one GEMM per product.
public static class MatMulKernels
{
    /// <summary>c[g] = a[g] · b[g] for each of <paramref name="count"/> products (overwrites c).</summary>
    /// <exception cref="ArgumentException">When a span is too short.</exception>
    public static void Forward(Span<float> c, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int count, int m, int k, int n)
    {
        Check(c.Length, a.Length, b.Length, count, m, k, n);
        for (int g = 0; g < count; g++)
            Gemm.Sgemm(false, false, m, n, k, 1f, a.Slice(g * m * k, m * k), k, b.Slice(g * k * n, k * n), n, 0f, c.Slice(g * m * n, m * n), n);
    }

    /// <summary>da += dc · bᵀ and db += aᵀ · dc per product; an empty da or db is skipped.</summary>
    public static void Backward(Span<float> da, Span<float> db, ReadOnlySpan<float> dc, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int count, int m, int k, int n)
    {
        Check(dc.Length, a.Length, b.Length, count, m, k, n);
        for (int g = 0; g < count; g++)
        {
            var dcg = dc.Slice(g * m * n, m * n);
            if (!da.IsEmpty) Gemm.Sgemm(false, true, m, k, n, 1f, dcg, n, b.Slice(g * k * n, k * n), n, 1f, da.Slice(g * m * k, m * k), k);
            if (!db.IsEmpty) Gemm.Sgemm(true, false, k, n, m, 1f, a.Slice(g * m * k, m * k), k, dcg, n, 1f, db.Slice(g * k * n, k * n), n);
        }
    }

    private static void Check(int c, int a, int b, int count, int m, int k, int n)
    {
        if (count <= 0 || m <= 0 || k <= 0 || n <= 0) throw new ArgumentException($"MatMul: {count} products of [{m}, {k}] · [{k}, {n}] need positive sizes.");
        if (a < (long)count * m * k || b < (long)count * k * n || c < (long)count * m * n)
            throw new ArgumentException($"MatMul: {count} products of [{m}, {k}] · [{k}, {n}] need {(long)count * m * k}, {(long)count * k * n} and {(long)count * m * n} values; the spans hold {a}, {b} and {c}.");
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        /// <summary>c[g, i, j] = Σₗ a[g, i, l] · b[g, l, j].</summary>
        public static void Forward<T>(Span<T> c, ReadOnlySpan<T> a, ReadOnlySpan<T> b, int count, int m, int k, int n) where T : INumberBase<T>
        {
            for (int g = 0; g < count; g++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        T s = T.Zero;
                        for (int l = 0; l < k; l++) s += a[(g * m + i) * k + l] * b[(g * k + l) * n + j];
                        c[(g * m + i) * n + j] = s;
                    }
        }
    }
}
