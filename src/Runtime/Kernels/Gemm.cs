using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Single-precision GEMM on row-major matrices: C[M,N] = alpha·op(A)·op(B) + beta·C, op = identity or transpose.
/// The one entry point every conv/linear kernel uses, so its speed is the framework's speed.
/// </summary>
/// <remarks>
/// Goto/BLIS structure: loop over NC-wide column blocks, KC-deep slices (B slice packed into 64-column panels),
/// MC-tall row blocks (A block packed into 6-row panels, alpha folded in), then the 6×64 AVX-512 micro-kernel.
/// Two cores: the caller and one persistent worker thread split the columns (or rows) of C; pack buffers are
/// per-thread and reused, so a call allocates nothing after the first.
/// </remarks>
public static unsafe class Gemm
{
    private const int KC = 256, MC = 120, NC = 2048;
    private const int MR = GemmMicroKernel.MR, NR = GemmMicroKernel.NR;

    /// <summary>True when the packed AVX-512 path is used (otherwise the portable loops).</summary>
    public static bool UsesAvx512 { get; } = Vector512.IsHardwareAccelerated;

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C. A is [M,K] (or [K,M] when <paramref name="transA"/>), B is [K,N] (or [N,K] when
    /// <paramref name="transB"/>); lda/ldb/ldc are row strides. beta = 0 overwrites C (NaNs in C are not propagated).
    /// </summary>
    /// <exception cref="ArgumentException">When a span is too short for the given sizes and strides.</exception>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        CheckSizes(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        ScaleC(c, m, n, ldc, beta);
        if (k <= 0 || alpha == 0f) return;
        if (!UsesAvx512 || (long)m * n * k < 4096)
        {
            SmallGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
            return;
        }
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
        {
            var job = new Job(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, pc, ldc);
            bool big = (long)m * n * k >= 1L << 20;
            if (big && n >= 2 * NR) RunSplit(job, splitColumns: true);
            else if (big && m >= 4 * MR) RunSplit(job, splitColumns: false);
            else job.Run(0, m, 0, n);
        }
    }

    private static void CheckSizes(bool transA, bool transB, int m, int n, int k, int aLen, int lda, int bLen, int ldb, int cLen, int ldc)
    {
        long needA = k <= 0 ? 0 : transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k;
        long needB = k <= 0 ? 0 : transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n;
        long needC = (long)(m - 1) * ldc + n;
        if (aLen < needA) throw new ArgumentException($"Sgemm: A has {aLen} floats, but {(transA ? "Aᵀ" : "A")} [{m}×{k}] with lda {lda} needs {needA}.");
        if (bLen < needB) throw new ArgumentException($"Sgemm: B has {bLen} floats, but {(transB ? "Bᵀ" : "B")} [{k}×{n}] with ldb {ldb} needs {needB}.");
        if (cLen < needC) throw new ArgumentException($"Sgemm: C has {cLen} floats, but [{m}×{n}] with ldc {ldc} needs {needC}.");
    }

    private static void ScaleC(Span<float> c, int m, int n, int ldc, float beta)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    // Tiny problems: packing and threads cost more than they save.
    private static void SmallGemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                float av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
                if (av == 0f) continue;
                var crow = c.Slice(i * ldc, n);
                if (!transB) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(b.Slice(p * ldb, n), av, crow, crow);
                else for (int j = 0; j < n; j++) crow[j] += av * b[j * ldb + p];
            }
    }

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

    /// <summary>One GEMM's operands as raw pointers (the caller keeps them pinned for the duration).</summary>
    private readonly struct Job(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        public int M => m;
        public int N => n;

        /// <summary>Computes rows [i0, i1) × columns [j0, j1) of C with this thread's pack buffers.</summary>
        public void Run(int i0, int i1, int j0, int j1)
        {
            var bufs = PackBuffers.ForThisThread();
            fixed (float* ap = bufs.A) fixed (float* bp = bufs.B)
            {
                float* tile = stackalloc float[MR * NR];
                for (int jc = j0; jc < j1; jc += NC)
                {
                    int nc = Math.Min(NC, j1 - jc);
                    for (int pc = 0; pc < k; pc += KC)
                    {
                        int kc = Math.Min(KC, k - pc);
                        PackB(bp, pc, kc, jc, nc);
                        for (int ic = i0; ic < i1; ic += MC)
                        {
                            int mc = Math.Min(MC, i1 - ic);
                            PackA(ap, ic, mc, pc, kc);
                            for (int jr = 0; jr < nc; jr += NR)
                            {
                                int nr = Math.Min(NR, nc - jr);
                                float* bpanel = bp + jr * kc;
                                for (int ir = 0; ir < mc; ir += MR)
                                {
                                    int mr = Math.Min(MR, mc - ir);
                                    float* apanel = ap + ir * kc;
                                    float* cdst = c + (long)(ic + ir) * ldc + jc + jr;
                                    if (mr == MR && nr == NR)
                                    {
                                        GemmMicroKernel.Kernel6x64(apanel, bpanel, kc, cdst, ldc);
                                    }
                                    else
                                    {
                                        // Edge tile: compute into a zeroed scratch tile, add the valid part.
                                        new Span<float>(tile, MR * NR).Clear();
                                        GemmMicroKernel.Kernel6x64(apanel, bpanel, kc, tile, NR);
                                        for (int r = 0; r < mr; r++)
                                            for (int q = 0; q < nr; q++) cdst[(long)r * ldc + q] += tile[r * NR + q];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        // A block [mc×kc] → panels of MR rows: panel[p*MR + r] = alpha·op(A)[ic+ir+r, pc+p], zero-padded rows.
        private void PackA(float* dst, int ic, int mc, int pc, int kc)
        {
            for (int ir = 0; ir < mc; ir += MR)
            {
                int mr = Math.Min(MR, mc - ir);
                float* panel = dst + ir * kc;
                for (int r = 0; r < MR; r++)
                {
                    if (r >= mr) { for (int p = 0; p < kc; p++) panel[p * MR + r] = 0f; continue; }
                    int row = ic + ir + r;
                    if (!transA)
                    {
                        float* src = a + (long)row * lda + pc;
                        for (int p = 0; p < kc; p++) panel[p * MR + r] = alpha * src[p];
                    }
                    else
                    {
                        float* src = a + (long)pc * lda + row;
                        for (int p = 0; p < kc; p++) panel[p * MR + r] = alpha * src[(long)p * lda];
                    }
                }
            }
        }

        // B slice [kc×nc] → panels of NR columns: panel[p*NR + q] = op(B)[pc+p, jc+jr+q], zero-padded columns.
        private void PackB(float* dst, int pc, int kc, int jc, int nc)
        {
            for (int jr = 0; jr < nc; jr += NR)
            {
                int nr = Math.Min(NR, nc - jr);
                float* panel = dst + jr * kc;
                if (!transB)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(pc + p) * ldb + jc + jr;
                        float* d = panel + p * NR;
                        if (nr == NR)
                        {
                            for (int v = 0; v < NR; v += 16) Vector512.Store(Vector512.Load(src + v), d + v);
                        }
                        else
                        {
                            int q = 0;
                            for (; q < nr; q++) d[q] = src[q];
                            for (; q < NR; q++) d[q] = 0f;
                        }
                    }
                }
                else
                {
                    for (int q = 0; q < NR; q++)
                    {
                        if (q >= nr) { for (int p = 0; p < kc; p++) panel[p * NR + q] = 0f; continue; }
                        float* src = b + (long)(jc + jr + q) * ldb + pc;
                        for (int p = 0; p < kc; p++) panel[p * NR + q] = src[p];
                    }
                }
            }
        }
    }

    private sealed class PackBuffers
    {
        [ThreadStatic] private static PackBuffers? t_buffers;
        public readonly float[] A = GC.AllocateUninitializedArray<float>(MC * KC + 64, pinned: true);
        public readonly float[] B = GC.AllocateUninitializedArray<float>(KC * (NC + NR) + 64, pinned: true);
        public static PackBuffers ForThisThread() => t_buffers ??= new PackBuffers();
    }

    /// <summary>The two halves of a split GEMM (columns or rows of C), for <see cref="TwoCores"/>.</summary>
    private struct Split
    {
        public Job Job;
        public bool Columns;
    }

    private static void RunSplit(in Job job, bool splitColumns)
    {
        var split = new Split { Job = job, Columns = splitColumns };
        TwoCores.Run(&RunHalf, &split);
    }

    private static void RunHalf(void* state, int half)
    {
        ref var s = ref *(Split*)state;
        int m = s.Job.M, n = s.Job.N;
        if (s.Columns)
        {
            int mid = (n / 2 + NR - 1) / NR * NR;
            if (half == 0) s.Job.Run(0, m, 0, mid); else s.Job.Run(0, m, mid, n);
        }
        else
        {
            int mid = (m / 2 + MR - 1) / MR * MR;
            if (half == 0) s.Job.Run(0, mid, 0, n); else s.Job.Run(mid, m, 0, n);
        }
    }
}
