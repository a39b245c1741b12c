using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one GEMM call (row-major, leading dimensions in elements).</summary>
internal struct GemmArgs
{
    public int M, N, K, Lda, Ldb, Ldc, TransA, TransB;
    public float Alpha, Beta;
}

public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemm;

    /// <summary>
    /// C[M×N] = alpha·op(A)·op(B) + beta·C, row-major, op = transpose when asked (A is K×M, B is N×K then). beta 0
    /// never reads C. A shared-memory tiled kernel: each group loads a tile of A and of B, then every thread of it
    /// accumulates one element of C.
    /// </summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        Need(a, k == 0 ? 0 : (transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k), nameof(a));
        Need(b, k == 0 ? 0 : (transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n), nameof(b));
        Need(c, (long)(m - 1) * ldc + n, nameof(c));
        _gemm ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernel);
        int t = Tile;
        var config = new KernelConfig(new Index2D(Groups(n, t), Groups(m, t)), new Index2D(t, t), SharedMemoryConfig.RequestDynamic<float>(2 * t * t));
        Launched();
        _gemm(config, a, b, c, new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Alpha = alpha, Beta = beta });
    }

    private static void GemmKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p)
    {
        int t = Group.DimX;
        int tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * t + tx, row = Grid.IdxY * t + ty;
        var shared = SharedMemory.GetDynamic<float>();
        var at = shared.SubView(0, t * t);
        var bt = shared.SubView(t * t, t * t);
        float sum = 0f;
        for (int k0 = 0; k0 < p.K; k0 += t)
        {
            int ka = k0 + tx, kb = k0 + ty;
            at[ty * t + tx] = row < p.M && ka < p.K ? a[p.TransA != 0 ? (long)ka * p.Lda + row : (long)row * p.Lda + ka] : 0f;
            bt[ty * t + tx] = kb < p.K && col < p.N ? b[p.TransB != 0 ? (long)col * p.Ldb + kb : (long)kb * p.Ldb + col] : 0f;
            Group.Barrier();
            for (int kk = 0; kk < t; kk++) sum += at[ty * t + kk] * bt[kk * t + tx];
            Group.Barrier();
        }
        if (row < p.M && col < p.N)
        {
            long i = (long)row * p.Ldc + col;
            c[i] = p.Beta == 0f ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[i];
        }
    }
}
