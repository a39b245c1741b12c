using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

/// <summary>
/// Single-precision GEMM on row-major matrices: C[M,N] = alpha·op(A)·op(B) + beta·C, op = identity or transpose.
/// The one entry point every conv/linear kernel uses, so its speed is the framework's speed.
/// </summary>
/// <remarks>
/// Goto/BLIS structure: loop over NC-wide column blocks, KC-deep slices (B slice packed into 64-column panels, or read
/// in place when that is cheaper), MC-tall row blocks (A block packed into 6-row panels, alpha folded in), then the
/// 6×64 AVX-512 micro-kernel, which also applies beta on the first k-slice. Two cores: the caller and one persistent
/// worker thread split the rows or columns of C (whichever a cost model prefers) or, for a long k with a small C, the
/// depth; a narrow C is computed as Cᵀ. Pack buffers are per-thread and reused, so a call allocates nothing after the
/// first of its size.
/// </remarks>
public static unsafe partial class Gemm
{
    private const int KC = 384, MC = 96, NC = 2048;
    private const int MR = GemmMicroKernel.MR, NR = GemmMicroKernel.NR;

    /// <summary>
    /// Allocates this thread's packing buffers now (they are otherwise created on its first packed GEMM, which can come
    /// late: while the worker thread is busy elsewhere, both halves of a split run on the caller). Networks call it when
    /// they build their workspace, so a training thread allocates nothing after its first step.
    /// </summary>
    public static void ReserveThreadBuffers() => PackBuffers.ForThisThread();

    /// <summary>True when the packed AVX-512 path is used (otherwise the Vector256 path of Gemm256.cs, or portable loops).</summary>
    public static bool UsesAvx512 { get; } = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

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
        bool packed = UsesAvx512 && k > 0 && alpha != 0f && (long)m * n * k >= 4096 && !(!transA && m <= SkinnyRows && (long)n * k >= 4096);
        bool skinny = UsesAvx512 && !transA && m <= SkinnyRows && (long)n * k >= 4096 && k > 0 && alpha != 0f;
        // Without AVX-512: the Vector256 path (Gemm256.cs) for all but tiny problems.
        if (UsesVector256 && k > 0 && alpha != 0f && (long)m * n * k >= 4096)
        {
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                RunVector256(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            return;
        }
        // The packed and skinny paths apply beta as they store C; the others scale C first.
        if (!packed && !skinny) ScaleC(c, m, n, ldc, beta);
        if (k <= 0 || alpha == 0f) return;
        if (skinny)
        {
            // Batch-1..4 inference and similar: packing B would read and write all of it for a handful of rows.
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            {
                var sk = new Skinny { A = pa, Lda = lda, B = pb, Ldb = ldb, C = pc, Ldc = ldc, M = m, N = n, K = k, Alpha = alpha, Beta = beta, TransB = transB };
                RunSkinny(ref sk);
            }
            return;
        }
        if (!packed)
        {
            SmallGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
            return;
        }
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
        {
            RunPacked(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
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
        if (!transA && transB)
        {
            // A·Bᵀ (a Linear layer) as dot products of rows, vectorised on every platform (TensorPrimitives), instead
            // of the strided scalar loop below, which CPUs with neither AVX-512 nor AVX2 (and every non-x86 one) would run.
            for (int i = 0; i < m; i++)
            {
                var arow = a.Slice(i * lda, k);
                for (int j = 0; j < n; j++)
                    c[i * ldc + j] += alpha * System.Numerics.Tensors.TensorPrimitives.Dot(arow, b.Slice(j * ldb, k));
            }
            return;
        }
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

    // ------------------------------------------------------------------ skinny A (m ≤ 4 rows): no packing

    private const int SkinnyRows = 4;

    private struct Skinny
    {
        public float* A, B, C;
        public ushort* B16;   // B as bfloat16 instead (SkinnyBFloat16)
        public int Lda, Ldb, Ldc, M, N, K;
        public float Alpha, Beta;
        public bool TransB;
        public bool Vector256;  // the Vector256 dots (Gemm256.cs; TransB only) instead of the AVX-512 ones
    }

    /// <summary>c = beta·c + v, with beta 0 overwriting (whatever c held, NaN included).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, float v, float beta) => *c = beta == 0f ? v : beta == 1f ? *c + v : beta * *c + v;

    // Both cores once B holds 256 KB or more (2^16 floats, 2^17 bfloat16 values): below that, waking the worker costs more.
    private static void RunSkinny(ref Skinny s)
    {
        if ((long)s.N * s.K * (s.B16 != null ? sizeof(ushort) : sizeof(float)) >= 1L << 18)
            fixed (Skinny* p = &s) HelperThread.Run(&SkinnyHalf, p);
        else SkinnyColumns(ref s, 0, s.N);
    }

    private static void SkinnyHalf(void* state, int half)
    {
        ref var s = ref *(Skinny*)state;
        int mid = (s.N / 2 + 63) / 64 * 64;
        if (mid > s.N) mid = s.N;
        if (half == 0) SkinnyColumns(ref s, 0, mid); else SkinnyColumns(ref s, mid, s.N);
    }

    private static void SkinnyColumns(ref Skinny s, int j0, int j1)
    {
        if (s.Vector256)
        {
            if (s.B16 != null) SkinnyDots256<BFloat16Rows256>(ref s, j0, j1);
            else SkinnyDots256<SingleRows256>(ref s, j0, j1);
            return;
        }
        if (s.TransB)
        {
            if (s.B16 != null) SkinnyDots<BFloat16Rows>(ref s, j0, j1);
            else SkinnyDots<SingleRows>(ref s, j0, j1);
            return;
        }
        // C[i, j0:j1] = beta·C + alpha·Σₚ A[i,p]·B[p, j0:j1]: 64-column strips of B streamed once, all rows of A at a time.
        int m = s.M, k = s.K;
        float* acc = stackalloc float[SkinnyRows * 64];
        for (int j = j0; j < j1; j += 64)
        {
            int w = Math.Min(64, j1 - j);
            new Span<float>(acc, SkinnyRows * 64).Clear();
            if (w == 64)
            {
                for (int i = 0; i < m; i++)
                {
                    var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0;
                    float* arow = s.A + (long)i * s.Lda;
                    for (int p = 0; p < k; p++)
                    {
                        float* brow = s.B + (long)p * s.Ldb + j;
                        var av = Vector512.Create(arow[p]);
                        c0 = Vector512.FusedMultiplyAdd(av, Vector512.Load(brow), c0);
                        c1 = Vector512.FusedMultiplyAdd(av, Vector512.Load(brow + 16), c1);
                        c2 = Vector512.FusedMultiplyAdd(av, Vector512.Load(brow + 32), c2);
                        c3 = Vector512.FusedMultiplyAdd(av, Vector512.Load(brow + 48), c3);
                    }
                    float* dst = acc + i * 64;
                    Vector512.Store(c0, dst); Vector512.Store(c1, dst + 16); Vector512.Store(c2, dst + 32); Vector512.Store(c3, dst + 48);
                }
            }
            else
            {
                for (int i = 0; i < m; i++)
                    for (int p = 0; p < k; p++)
                    {
                        float av = s.A[(long)i * s.Lda + p];
                        float* brow = s.B + (long)p * s.Ldb + j;
                        for (int q = 0; q < w; q++) acc[i * 64 + q] += av * brow[q];
                    }
            }
            for (int i = 0; i < m; i++)
            {
                float* crow = s.C + (long)i * s.Ldc + j;
                for (int q = 0; q < w; q++) Put(crow + q, s.Alpha * acc[i * 64 + q], s.Beta);
            }
        }
    }

    // C[i, j] = beta·C[i, j] + alpha·dot(A[i, :], B[j, :]) with B row-major [n, k] (a Linear layer's weight): two B rows at a time
    // against every row of A, so each weight is read once. TW reads B's elements: float32, or bfloat16 widened as loaded.
    private static void SkinnyDots<TW>(ref Skinny s, int j0, int j1) where TW : struct, IWeightRows
    {
        int m = s.M, k = s.K, k16 = k & ~15;
        long ld = s.Ldb;
        void* bw = TW.Base(ref s);
        int j = j0;
        if (m == 1)
        {
            // A single row (batch-1 inference): eight weight rows at a time, so eight streams keep memory busy.
            float* arow = s.A;
            var sums = stackalloc float[8];
            for (; j + 8 <= j1; j += 8)
            {
                long r0 = (long)j * ld;
                var d0 = Vector512<float>.Zero; var d1 = d0; var d2 = d0; var d3 = d0; var d4 = d0; var d5 = d0; var d6 = d0; var d7 = d0;
                int p = 0;
                for (; p < k16; p += 16)
                {
                    var a0 = Vector512.Load(arow + p);
                    long q = r0 + p;
                    d0 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q), d0);
                    d1 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + ld), d1);
                    d2 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 2 * ld), d2);
                    d3 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 3 * ld), d3);
                    d4 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 4 * ld), d4);
                    d5 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 5 * ld), d5);
                    d6 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 6 * ld), d6);
                    d7 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, q + 7 * ld), d7);
                }
                sums[0] = Vector512.Sum(d0); sums[1] = Vector512.Sum(d1); sums[2] = Vector512.Sum(d2); sums[3] = Vector512.Sum(d3);
                sums[4] = Vector512.Sum(d4); sums[5] = Vector512.Sum(d5); sums[6] = Vector512.Sum(d6); sums[7] = Vector512.Sum(d7);
                for (int r = 0; r < 8; r++)
                {
                    float x = sums[r];
                    long br = r0 + r * ld;
                    for (int pp = p; pp < k; pp++) x += arow[pp] * TW.At(bw, br + pp);
                    Put(s.C + j + r, s.Alpha * x, s.Beta);
                }
            }
        }
        for (; j < j1; j += 2)
        {
            bool two = j + 1 < j1;
            long b0 = (long)j * ld, b1 = two ? b0 + ld : b0;
            for (int i = 0; i < m; i++)
            {
                float* arow = s.A + (long)i * s.Lda;
                var d0 = Vector512<float>.Zero; var d1 = d0; var e0 = d0; var e1 = d0;
                int p = 0;
                for (; p + 32 <= k16; p += 32)
                {
                    var a0 = Vector512.Load(arow + p); var a1 = Vector512.Load(arow + p + 16);
                    d0 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, b0 + p), d0);
                    d1 = Vector512.FusedMultiplyAdd(a1, TW.Load(bw, b0 + p + 16), d1);
                    e0 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, b1 + p), e0);
                    e1 = Vector512.FusedMultiplyAdd(a1, TW.Load(bw, b1 + p + 16), e1);
                }
                for (; p < k16; p += 16)
                {
                    var a0 = Vector512.Load(arow + p);
                    d0 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, b0 + p), d0);
                    e0 = Vector512.FusedMultiplyAdd(a0, TW.Load(bw, b1 + p), e0);
                }
                float x0 = Vector512.Sum(d0 + d1), x1 = Vector512.Sum(e0 + e1);
                for (; p < k; p++) { x0 += arow[p] * TW.At(bw, b0 + p); x1 += arow[p] * TW.At(bw, b1 + p); }
                Put(s.C + (long)i * s.Ldc + j, s.Alpha * x0, s.Beta);
                if (two) Put(s.C + (long)i * s.Ldc + j + 1, s.Alpha * x1, s.Beta);
            }
        }
    }

    /// <summary>How SkinnyDots reads B's elements (a struct type argument, so each form compiles to its own loop).</summary>
    private interface IWeightRows
    {
        static abstract void* Base(ref Skinny s);
        static abstract Vector512<float> Load(void* b, long index);
        static abstract float At(void* b, long index);
    }

    private struct SingleRows : IWeightRows
    {
        public static void* Base(ref Skinny s) => s.B;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(void* b, long index) => Vector512.Load((float*)b + index);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float At(void* b, long index) => ((float*)b)[index];
    }

    private struct BFloat16Rows : IWeightRows
    {
        public static void* Base(ref Skinny s) => s.B16;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(void* b, long index) => BFloat16.Load16((ushort*)b + index);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float At(void* b, long index) => BFloat16.ToSingle(((ushort*)b)[index]);
    }

    /// <summary>
    /// C[m×n] = A[m×k]·Bᵀ with B [n×k] given as bfloat16 (row stride k), for m ≤ 4 rows (batch-1..4 inference, where
    /// streaming the weights is the cost): float32 products and sums, each weight widened as it is loaded.
    /// </summary>
    internal static void SkinnyBFloat16(int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<ushort> b, Span<float> c, bool vector256 = false)
    {
        if (m > SkinnyRows) throw new ArgumentException($"SkinnyBFloat16: {m} rows (at most {SkinnyRows}).");
        if (a.Length < (long)m * k || b.Length < (long)n * k || c.Length < (long)m * n)
            throw new ArgumentException($"SkinnyBFloat16: spans too short for [{m}×{k}]·[{n}×{k}]ᵀ (a {a.Length}, b {b.Length}, c {c.Length}).");
        if (m <= 0 || n <= 0) return;
        fixed (float* pa = a) fixed (ushort* pb = b) fixed (float* pc = c)
        {
            // Without AVX-512 the Vector256 dots (emulated, so still exact, where Vector256 is not accelerated).
            var sk = new Skinny { A = pa, Lda = k, B16 = pb, Ldb = k, C = pc, Ldc = n, M = m, N = n, K = k, Alpha = 1f, Beta = 0f, TransB = true, Vector256 = vector256 || !UsesAvx512 };
            RunSkinny(ref sk);
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
    /// <remarks>Only the k-range [k0, k1) is summed, so two threads can each take half of a long k.</remarks>
    private readonly struct Job(bool transA, bool transB, int m, int n, int k0, int k1, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        public int M => m;
        public int N => n;

        /// <summary>
        /// Non-transposed B is read in place by the micro-kernel (row stride ldb) instead of copied into panels when
        /// few row panels of A share each B panel (m ≤ 192, e.g. a convolution's output channels): the copy then
        /// costs more than the strided reads. Not for strides that are a multiple of 256 floats, whose rows collide in
        /// the same cache sets.
        /// </summary>
        private bool DirectB => !transB && m <= 192 && (ldb & 255) != 0;

        /// <summary>The same product over k-range [k0, k1) written to c (row stride ldc) with this beta.</summary>
        public Job WithOutput(int k0, int k1, float* c, int ldc, float beta) => new(transA, transB, m, n, k0, k1, alpha, a, lda, b, ldb, beta, c, ldc);

        /// <summary>Cᵀ = op(B)ᵀ·op(A)ᵀ, written to c [n×m] (row stride m) with beta 0.</summary>
        public Job Transposed(float* c) => new(!transB, !transA, n, m, k0, k1, alpha, b, ldb, a, lda, 0f, c, m);

        /// <summary>Computes rows [i0, i1) × columns [j0, j1) of C with this thread's pack buffers.</summary>
        public void Run(int i0, int i1, int j0, int j1)
        {
            var bufs = PackBuffers.ForThisThread();
            fixed (float* ap = bufs.A) fixed (float* bp = bufs.B)
            {
                for (int jc = j0; jc < j1; jc += NC)
                {
                    int nc = Math.Min(NC, j1 - jc);
                    for (int pc = k0; pc < k1; pc += KC)
                    {
                        int kc = Math.Min(KC, k1 - pc);
                        float betaK = pc == k0 ? beta : 1f;
                        // In-place B: only a partial last panel needs packing (zero padding).
                        PackB(bp, pc, kc, jc, nc, DirectB ? nc / NR * NR : 0);
                        for (int ic = i0; ic < i1; ic += MC)
                        {
                            int mc = Math.Min(MC, i1 - ic);
                            PackA(ap, ic, mc, pc, kc);
                            for (int jr = 0; jr < nc; jr += NR)
                            {
                                int nr = Math.Min(NR, nc - jr);
                                bool direct = DirectB && nr == NR;
                                float* bpanel = direct ? b + (long)pc * ldb + jc + jr : bp + jr * kc;
                                long bs = direct ? ldb : NR;
                                for (int ir = 0; ir < mc; ir += MR)
                                {
                                    int mr = Math.Min(MR, mc - ir);
                                    float* apanel = ap + ir * kc;
                                    float* cdst = c + (long)(ic + ir) * ldc + jc + jr;
                                    if (mr == MR && nr == NR) GemmMicroKernel.Kernel6x64(apanel, bpanel, bs, kc, cdst, ldc, betaK);
                                    else if (nr == NR) GemmMicroKernel.KernelRows(apanel, bpanel, bs, kc, cdst, ldc, betaK, mr);
                                    else GemmMicroKernel.KernelEdge(apanel, bpanel, bs, kc, cdst, ldc, betaK, mr, nr);
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
                if (!transA && mr == MR)
                {
                    // Six row streams read in step, the panel written contiguously.
                    float* s0 = a + (long)(ic + ir) * lda + pc;
                    float* s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                    int p = 0;
                    if (kc >= 16)
                    {
                        // 16 k-values of the six rows → 96 interleaved floats: each output vector takes its lanes
                        // from the row pairs (0,1), (2,3), (4,5) by two-source permutes, then two blends.
                        ref int idx = ref MemoryMarshal.GetArrayDataReference(s_packAIndex);
                        var va = Vector512.Create(alpha);
                        for (; p + 16 <= kc; p += 16)
                        {
                            var r0 = va * Vector512.Load(s0 + p); var r1 = va * Vector512.Load(s1 + p);
                            var r2 = va * Vector512.Load(s2 + p); var r3 = va * Vector512.Load(s3 + p);
                            var r4 = va * Vector512.Load(s4 + p); var r5 = va * Vector512.Load(s5 + p);
                            float* d = panel + p * MR;
                            for (int j = 0; j < MR; j++)
                            {
                                nuint o = (nuint)(j * 80);
                                var p01 = Avx512F.PermuteVar16x32x2(r0, Vector512.LoadUnsafe(ref idx, o), r1);
                                var p23 = Avx512F.PermuteVar16x32x2(r2, Vector512.LoadUnsafe(ref idx, o + 16), r3);
                                var p45 = Avx512F.PermuteVar16x32x2(r4, Vector512.LoadUnsafe(ref idx, o + 32), r5);
                                var from01 = Vector512.LoadUnsafe(ref idx, o + 48).AsSingle();
                                var from23 = Vector512.LoadUnsafe(ref idx, o + 64).AsSingle();
                                Vector512.Store(Vector512.ConditionalSelect(from01, p01, Vector512.ConditionalSelect(from23, p23, p45)), d + 16 * j);
                            }
                        }
                    }
                    for (; p < kc; p++)
                    {
                        float* d = panel + p * MR;
                        d[0] = alpha * s0[p]; d[1] = alpha * s1[p]; d[2] = alpha * s2[p];
                        d[3] = alpha * s3[p]; d[4] = alpha * s4[p]; d[5] = alpha * s5[p];
                    }
                    continue;
                }
                if (transA)
                {
                    // op(A) = Aᵀ: the MR values of one k are contiguous in A's row pc+p. A masked load (never touches
                    // memory past the mr values, zero-fills the padding rows) and an 8-float store whose 2 extra lanes
                    // the next k overwrites (the buffer has slack after the last panel).
                    var mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(mr)).AsSingle();
                    var va = Vector256.Create(alpha);
                    float* src = a + (long)pc * lda + ic + ir;
                    for (int p = 0; p < kc; p++, src += lda)
                        Vector256.Store(va * Avx.MaskLoad(src, mask), panel + p * MR);
                    continue;
                }
                for (int r = 0; r < MR; r++)
                {
                    if (r >= mr) { for (int p = 0; p < kc; p++) panel[p * MR + r] = 0f; continue; }
                    float* src = a + (long)(ic + ir + r) * lda + pc;
                    for (int p = 0; p < kc; p++) panel[p * MR + r] = alpha * src[p];
                }
            }
        }

        // B slice [kc×nc] → panels of NR columns: panel[p*NR + q] = op(B)[pc+p, jc+jr+q], zero-padded columns.
        private void PackB(float* dst, int pc, int kc, int jc, int nc, int jrStart)
        {
            for (int jr = jrStart; jr < nc; jr += NR)
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
                    // op(B) = Bᵀ: 16×16 blocks transposed in registers (16 rows of B read contiguously, the panel
                    // written a full vector at a time); 4×4 blocks and scalars for the ragged edges.
                    int q = 0;
                    for (; q + 16 <= nr; q += 16)
                    {
                        float* r0 = b + (long)(jc + jr + q) * ldb + pc;
                        int p = 0;
                        for (; p + 16 <= kc; p += 16) Transpose16x16(r0 + p, ldb, panel + p * NR + q, NR);
                        for (; p < kc; p++)
                            for (int qq = 0; qq < 16; qq++) panel[p * NR + q + qq] = r0[(long)qq * ldb + p];
                    }
                    for (; q + 4 <= nr; q += 4)
                    {
                        float* r0 = b + (long)(jc + jr + q) * ldb + pc;
                        float* r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb;
                        int p = 0;
                        for (; p + 4 <= kc; p += 4)
                        {
                            var v0 = Vector128.Load(r0 + p); var v1 = Vector128.Load(r1 + p);
                            var v2 = Vector128.Load(r2 + p); var v3 = Vector128.Load(r3 + p);
                            var t0 = Sse.UnpackLow(v0, v1); var t1 = Sse.UnpackLow(v2, v3);
                            var t2 = Sse.UnpackHigh(v0, v1); var t3 = Sse.UnpackHigh(v2, v3);
                            float* d = panel + p * NR + q;
                            Vector128.Store(Sse.MoveLowToHigh(t0, t1), d);
                            Vector128.Store(Sse.MoveHighToLow(t1, t0), d + NR);
                            Vector128.Store(Sse.MoveLowToHigh(t2, t3), d + 2 * NR);
                            Vector128.Store(Sse.MoveHighToLow(t3, t2), d + 3 * NR);
                        }
                        for (; p < kc; p++)
                        {
                            float* d = panel + p * NR + q;
                            d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p]; d[3] = r3[p];
                        }
                    }
                    for (; q < NR; q++)
                    {
                        if (q >= nr) { for (int p = 0; p < kc; p++) panel[p * NR + q] = 0f; continue; }
                        float* src = b + (long)(jc + jr + q) * ldb + pc;
                        for (int p = 0; p < kc; p++) panel[p * NR + q] = src[p];
                    }
                }
            }
        }
    }

    /// <summary>dst[p·dstStride + r] = src[r·ld + p] for a 16×16 block: the standard three-stage AVX-512 transpose
    /// (32-bit unpacks, 64-bit unpacks, then two rounds of 128-bit lane shuffles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16x16(float* src, long ld, float* dst, int dstStride)
    {
        Interleave4(src, ld, out var u0, out var u1, out var u2, out var u3);
        Interleave4(src + 4 * ld, ld, out var u4, out var u5, out var u6, out var u7);
        Interleave4(src + 8 * ld, ld, out var u8, out var u9, out var u10, out var u11);
        Interleave4(src + 12 * ld, ld, out var u12, out var u13, out var u14, out var u15);
        LaneShuffle(u0, u4, u8, u12, dst, dstStride);
        LaneShuffle(u1, u5, u9, u13, dst + dstStride, dstStride);
        LaneShuffle(u2, u6, u10, u14, dst + 2 * dstStride, dstStride);
        LaneShuffle(u3, u7, u11, u15, dst + 3 * dstStride, dstStride);
    }

    // Four rows → u_c (c = 0..3) whose 128-bit lane l holds the four rows' element 4l + c.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave4(float* s0, long ld, out Vector512<float> u0, out Vector512<float> u1, out Vector512<float> u2, out Vector512<float> u3)
    {
        var r0 = Vector512.Load(s0); var r1 = Vector512.Load(s0 + ld);
        var r2 = Vector512.Load(s0 + 2 * ld); var r3 = Vector512.Load(s0 + 3 * ld);
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble(); var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble(); var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        u0 = Avx512F.UnpackLow(t0, t2).AsSingle(); u1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        u2 = Avx512F.UnpackLow(t1, t3).AsSingle(); u3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
    }

    // Lane l of a, b, c, d (rows 0–3, 4–7, 8–11, 12–15 of one column 4l + c) gathered into output row 4l.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LaneShuffle(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* dst, int stride)
    {
        var v = Avx512F.Shuffle4x128(a, b, 0x88); var w = Avx512F.Shuffle4x128(a, b, 0xDD);
        var x = Avx512F.Shuffle4x128(c, d, 0x88); var y = Avx512F.Shuffle4x128(c, d, 0xDD);
        Vector512.Store(Avx512F.Shuffle4x128(v, x, 0x88), dst);
        Vector512.Store(Avx512F.Shuffle4x128(w, y, 0x88), dst + 4 * stride);
        Vector512.Store(Avx512F.Shuffle4x128(v, x, 0xDD), dst + 8 * stride);
        Vector512.Store(Avx512F.Shuffle4x128(w, y, 0xDD), dst + 12 * stride);
    }

    /// <summary>
    /// PackA's interleave tables, 80 ints per output vector j of a 16-k block: permute indices for the row pairs
    /// (0,1), (2,3), (4,5), then the lanes taken from pair (0,1) and from pair (2,3) (all bits set), the rest (4,5).
    /// Lane t of output j is row (16j+t) % 6 at k (16j+t) / 6.
    /// </summary>
    private static readonly int[] s_packAIndex = BuildPackAIndex();

    private static int[] BuildPackAIndex()
    {
        var t = new int[MR * 80];
        for (int j = 0; j < MR; j++)
            for (int lane = 0; lane < 16; lane++)
            {
                int g = 16 * j + lane, r = g % MR, p = g / MR, pair = r / 2;
                t[j * 80 + pair * 16 + lane] = (r % 2) * 16 + p;
                if (pair == 0) t[j * 80 + 48 + lane] = -1;
                if (pair == 1) t[j * 80 + 64 + lane] = -1;
            }
        return t;
    }

    private sealed class PackBuffers
    {
        [ThreadStatic] private static PackBuffers? t_buffers;
        public readonly float[] A = GC.AllocateUninitializedArray<float>(MC * KC + 64, pinned: true);
        public readonly float[] B = GC.AllocateUninitializedArray<float>(KC * (NC + NR) + 64, pinned: true);
        private float[] _partial = [];
        public static PackBuffers ForThisThread() => t_buffers ??= new PackBuffers().Reserve();
        private PackBuffers Reserve() { Partial(MinPartial); return this; }

        /// <summary>
        /// Scratch for partial or transposed results (k-split, Cᵀ); grows to the largest need, then is reused. It starts
        /// at 64 Ki floats and grows by powers of two because which thread runs a half depends on whether the worker is
        /// free (a busy worker leaves both halves to the caller), so a thread can meet a new size after warm-up; small
        /// networks then never allocate and large ones only at a few sizes.
        /// </summary>
        public float[] Partial(long floats)
        {
            if (_partial.Length < floats)
                _partial = GC.AllocateUninitializedArray<float>((int)Math.Min(Array.MaxLength,
                    Math.Max(MinPartial, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)floats))), pinned: true);
            return _partial;
        }

        private const int MinPartial = 1 << 16;
    }

    /// <summary>How one GEMM is shared by the two cores.</summary>
    private enum SplitKind { Columns, Rows, Depth }

    private struct Split
    {
        public Job Job, Second;   // Depth: Job sums the first half of k, Second the rest
        public SplitKind Kind;
    }

    /// <summary>
    /// Runs the packed GEMM on both cores. Narrow C (few columns, e.g. a conv weight gradient with 27 columns) is
    /// computed as Cᵀ = op(B)ᵀ·op(A)ᵀ so that the wide side fills the 64-column micro-tiles; a long k with a small C
    /// (weight gradients, fc1) is split in depth: each core sums half of k into its own copy of C, then they are
    /// added, which keeps both cores busy and packs every operand once.
    /// </summary>
    private static void RunPacked(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        var job = new Job(transA, transB, m, n, 0, k, alpha, a, lda, b, ldb, beta, c, ldc);
        bool big = (long)m * n * k >= 1L << 20 && HelperThread.Available;
        bool transposeC = TransposedIsBetter(m, n);
        bool depth = big && k >= 2 * KC && k >= 2 * Math.Max(m, n);
        if (!transposeC && !depth)
        {
            if (big && ChooseSplit(m, n) is { } kind) RunSplit(job, kind);
            else job.Run(0, m, 0, n);
            return;
        }
        long mn = (long)m * n;
        var scratch = PackBuffers.ForThisThread().Partial(depth ? 2 * mn : mn);
        fixed (float* t = scratch)
        {
            int mid = k / 2;
            if (transposeC)
            {
                // t (and t + mn) hold [n×m] Cᵀ partials with beta 0; C = beta·C + their sum, transposed.
                var tj = job.Transposed(t);
                if (depth) RunDepth(tj.WithOutput(0, mid, t, m, 0f), tj.WithOutput(mid, k, t + mn, m, 0f));
                else if (big && ChooseSplit(n, m) is { } kind) RunSplit(tj, kind);
                else tj.Run(0, n, 0, m);
                AddTransposed(c, ldc, m, n, beta, t, depth ? t + mn : null);
            }
            else
            {
                // The caller's half goes straight into C with beta; the worker's into t, added afterwards.
                RunDepth(job.WithOutput(0, mid, c, ldc, beta), job.WithOutput(mid, k, t, n, 0f));
                for (int i = 0; i < m; i++)
                {
                    var row = new Span<float>(c + (long)i * ldc, n);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(t + (long)i * n, n), row);
                }
            }
        }
    }

    /// <summary>
    /// Columns or rows of C for the two cores, whichever finishes sooner by a per-k cost model: the busier core's
    /// micro-tiles (12 cycles of FMAs per tile per k; an odd number of 64-column panels or 6-row panels leaves one
    /// core a panel more) plus its packing (about half a cycle per float): a column split packs all of A on both
    /// cores, a row split all of B. Null when neither side has two panels to share.
    /// </summary>
    private static SplitKind? ChooseSplit(int m, int n)
    {
        long colPanels = (n + NR - 1) / NR, rowPanels = (m + MR - 1) / MR;
        if (colPanels < 2 && rowPanels < 2) return null;
        double byColumns = colPanels < 2 ? double.MaxValue : 12.0 * ((colPanels + 1) / 2) * rowPanels + 0.5 * (m + n / 2.0);
        double byRows = rowPanels < 2 ? double.MaxValue : 12.0 * colPanels * ((rowPanels + 1) / 2) + 0.5 * (n + m / 2.0);
        return byColumns <= byRows ? SplitKind.Columns : SplitKind.Rows;
    }

    /// <summary>
    /// True when the micro-tiles waste less of their 6×64 area on Cᵀ [n×m] than on C [m×n]: n narrow (≤ 48 columns
    /// leaves at least a quarter of every tile empty) and m wide enough to fill the tiles' 64 columns instead.
    /// </summary>
    private static bool TransposedIsBetter(int m, int n)
    {
        static double Fill(int rows, int cols) => (double)rows / ((rows + MR - 1) / MR * MR) * cols / ((cols + NR - 1) / NR * NR);
        return n <= 48 && Fill(n, m) > 1.2 * Fill(m, n);
    }

    // c[i, j] = beta·c[i, j] + t0[j, i] (+ t1[j, i]); t0, t1 are [n×m].
    private static void AddTransposed(float* c, int ldc, int m, int n, float beta, float* t0, float* t1)
    {
        for (int i = 0; i < m; i++)
        {
            float* crow = c + (long)i * ldc;
            for (int j = 0; j < n; j++)
            {
                float v = t0[(long)j * m + i];
                if (t1 != null) v += t1[(long)j * m + i];
                crow[j] = beta == 0f ? v : beta * crow[j] + v;
            }
        }
    }

    private static void RunSplit(in Job job, SplitKind kind)
    {
        var split = new Split { Job = job, Kind = kind };
        HelperThread.Run(&RunHalf, &split);
    }

    private static void RunDepth(in Job first, in Job second)
    {
        var split = new Split { Job = first, Second = second, Kind = SplitKind.Depth };
        HelperThread.Run(&RunHalf, &split);
    }

    private static void RunHalf(void* state, int half)
    {
        ref var s = ref *(Split*)state;
        int m = s.Job.M, n = s.Job.N;
        switch (s.Kind)
        {
            case SplitKind.Columns:
            {
                int mid = (n / 2 + NR - 1) / NR * NR;
                if (half == 0) s.Job.Run(0, m, 0, mid); else s.Job.Run(0, m, mid, n);
                break;
            }
            case SplitKind.Rows:
            {
                int mid = (m / 2 + MR - 1) / MR * MR;
                if (half == 0) s.Job.Run(0, mid, 0, n); else s.Job.Run(mid, m, 0, n);
                break;
            }
            default:
                if (half == 0) s.Job.Run(0, m, 0, n); else s.Second.Run(0, m, 0, n);
                break;
        }
    }
}
