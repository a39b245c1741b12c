namespace Compiled.Nets.Kernels;

/// <summary>
/// Single-precision GEMM on row-major matrices: C[M,N] = alpha·op(A)·op(B) + beta·C, op = identity or transpose.
/// The one entry point every conv/linear kernel uses, so its speed is the framework's speed.
/// </summary>
public static class Gemm
{
    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C. A is [M,K] (or [K,M] when <paramref name="transA"/>), B is [K,N] (or [N,K] when
    /// <paramref name="transB"/>); lda/ldb/ldc are row strides. beta = 0 overwrites C (NaNs in C are not propagated).
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => SgemmReference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>The plain triple loop (double accumulation), kept as the oracle for the fast path.</summary>
    public static void SgemmReference(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += (double)av * bv;
                }
                ref float cij = ref c[i * ldc + j];
                cij = beta == 0f ? alpha * (float)sum : alpha * (float)sum + beta * cij;
            }
        }
    }
}
