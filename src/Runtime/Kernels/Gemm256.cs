using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// The packed GEMM for x86 CPUs without AVX-512 (AVX2 + FMA3, chosen at start-up): the same Goto/BLIS loops as the
// AVX-512 path, with a 6×16 Vector256 micro-kernel — 12 accumulators, two B vectors and one broadcast fill 15 of the 16
// ymm registers such a CPU has — and a skinny path of dot products for ≤ 4 rows against a row-major weight (Linear at
// batch 1..4, in float32 or bfloat16). On a CPU whose 512-bit FMAs run as two 256-bit halves (Zen 4) both paths have
// the same FMA peak, so this one can be timed against the AVX-512 path there with DOTNET_EnableAVX512=0.
public static unsafe partial class Gemm
{
    /// <summary>True when the Vector256 packed path is used (x86 with AVX2 and FMA, no AVX-512).</summary>
    public static bool UsesVector256 { get; } = !UsesAvx512 && Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx2.IsSupported;

    private const int KC2 = 256, MC2 = 72, NC2 = 1024, MR2 = 6, NR2 = 16;

    private struct Job256
    {
        public float* A, B, C;
        public int Lda, Ldb, Ldc, M, N, K;
        public float Alpha;
        public bool TransA, TransB;
    }

    /// <summary>
    /// The Vector256 path whatever this CPU's widest vectors (for tests on AVX-512 hosts, which otherwise never take
    /// it): the packed kernel, or the dot products for m ≤ 4 rows against a transposed B. Needs AVX2 and FMA.
    /// </summary>
    internal static void SgemmVector256(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!Avx2.IsSupported || !Fma.IsSupported) throw new PlatformNotSupportedException("The Vector256 GEMM needs AVX2 and FMA.");
        CheckSizes(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m <= 0 || n <= 0 || k <= 0) return;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            RunVector256(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    // The dot products for a few rows against a transposed B (a Linear layer at batch ≤ 4), the packed kernel otherwise.
    private static void RunVector256(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (!transA && transB && m <= SkinnyRows)
        {
            var sk = new Skinny { A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, M = m, N = n, K = k, Alpha = alpha, Beta = beta, TransB = true, Vector256 = true };
            RunSkinny(ref sk);
        }
        else Run256(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>C = beta·C, then C += alpha·op(A)·op(B) on the Vector256 path, on both cores when it is big enough.</summary>
    private static void Run256(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        ScaleC(new Span<float>(c, (int)Math.Min(int.MaxValue, (long)(m - 1) * ldc + n)), m, n, ldc, beta);
        var job = new Job256 { A = a, B = b, C = c, Lda = lda, Ldb = ldb, Ldc = ldc, M = m, N = n, K = k, Alpha = alpha, TransA = transA, TransB = transB };
        bool big = (long)m * n * k >= 1L << 20 && HelperThread.Available;
        if (big && n >= 4 * NR2) HelperThread.Run(&Columns256, &job);
        else if (big && m >= 2 * MR2) HelperThread.Run(&Rows256, &job);
        else Block256(ref job, 0, m, 0, n);
    }

    private static void Columns256(void* state, int half)
    {
        ref var j = ref *(Job256*)state;
        int mid = Math.Min((j.N / 2 + NR2 - 1) / NR2 * NR2, j.N);
        if (half == 0) Block256(ref j, 0, j.M, 0, mid); else Block256(ref j, 0, j.M, mid, j.N);
    }

    private static void Rows256(void* state, int half)
    {
        ref var j = ref *(Job256*)state;
        int mid = Math.Min((j.M / 2 + MR2 - 1) / MR2 * MR2, j.M);
        if (half == 0) Block256(ref j, 0, mid, 0, j.N); else Block256(ref j, mid, j.M, 0, j.N);
    }

    // C[i0:i1, j0:j1] += alpha·op(A)[i0:i1, :]·op(B)[:, j0:j1], with this thread's pack buffers.
    private static void Block256(ref Job256 j, int i0, int i1, int j0, int j1)
    {
        var buffers = PackBuffers.ForThisThread();
        fixed (float* pa = buffers.A) fixed (float* pb = buffers.B)
        {
            float* tile = stackalloc float[MR2 * NR2];
            for (int jc = j0; jc < j1; jc += NC2)
            {
                int nc = Math.Min(NC2, j1 - jc);
                for (int pc = 0; pc < j.K; pc += KC2)
                {
                    int kc = Math.Min(KC2, j.K - pc);
                    PackB256(ref j, pb, pc, kc, jc, nc);
                    for (int ic = i0; ic < i1; ic += MC2)
                    {
                        int mc = Math.Min(MC2, i1 - ic);
                        PackA256(ref j, pa, ic, mc, pc, kc);
                        for (int jr = 0; jr < nc; jr += NR2)
                            for (int ir = 0; ir < mc; ir += MR2)
                                Kernel6x16(pa + (long)ir * kc, pb + (long)jr * kc, kc, j.C + (long)(ic + ir) * j.Ldc + jc + jr, j.Ldc, j.Alpha,
                                    Math.Min(MR2, mc - ir), Math.Min(NR2, nc - jr), tile);
                    }
                }
            }
        }
    }

    // 6-row panels: panel[p·6 + r] = op(A)[ic + ir + r, pc + p], rows past mc zero. Each source row (or, transposed,
    // each source row segment) is read in address order.
    private static void PackA256(ref Job256 j, float* dst, int ic, int mc, int pc, int kc)
    {
        for (int ir = 0; ir < mc; ir += MR2)
        {
            int rows = Math.Min(MR2, mc - ir);
            float* panel = dst + (long)ir * kc;
            if (rows < MR2) new Span<float>(panel, kc * MR2).Clear();
            if (j.TransA)
                for (int p = 0; p < kc; p++)
                {
                    float* src = j.A + (long)(pc + p) * j.Lda + ic + ir;
                    for (int r = 0; r < rows; r++) panel[p * MR2 + r] = src[r];
                }
            else
                for (int r = 0; r < rows; r++)
                {
                    float* src = j.A + (long)(ic + ir + r) * j.Lda + pc;
                    for (int p = 0; p < kc; p++) panel[p * MR2 + r] = src[p];
                }
        }
    }

    // 16-column panels: panel[p·16 + q] = op(B)[pc + p, jc + jr + q], columns past nc zero. Untransposed, each row of
    // the slice is read once in address order across all panels (row by row per panel strides the rows, which for a
    // power-of-two row length all fall into one cache set).
    private static void PackB256(ref Job256 j, float* dst, int pc, int kc, int jc, int nc)
    {
        int full = nc / NR2 * NR2;
        if (!j.TransB)
        {
            for (int p = 0; p < kc; p++)
            {
                float* src = j.B + (long)(pc + p) * j.Ldb + jc;
                int jr = 0;
                for (; jr < full; jr += NR2)
                {
                    float* row = dst + (long)jr * kc + p * NR2;
                    Vector256.Store(Vector256.Load(src + jr), row); Vector256.Store(Vector256.Load(src + jr + 8), row + 8);
                }
                if (jr < nc)
                {
                    float* row = dst + (long)jr * kc + p * NR2;
                    for (int q = 0; q < NR2; q++) row[q] = jr + q < nc ? src[jr + q] : 0f;
                }
            }
            return;
        }
        // Transposed (a Linear layer's weight): 8×8 blocks through registers, the rest one by one.
        int k8 = kc & ~7;
        for (int jr = 0; jr < nc; jr += NR2)
        {
            int cols = Math.Min(NR2, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (cols < NR2) new Span<float>(panel, kc * NR2).Clear();
            int q0 = 0;
            for (; q0 + 8 <= cols; q0 += 8)
            {
                float* src = j.B + (long)(jc + jr + q0) * j.Ldb + pc;
                for (int p = 0; p < k8; p += 8) Transpose8x8(src + p, j.Ldb, panel + p * NR2 + q0, NR2);
                for (int q = q0; q < q0 + 8; q++)
                    for (int p = k8; p < kc; p++) panel[p * NR2 + q] = src[(long)(q - q0) * j.Ldb + p];
            }
            for (int q = q0; q < cols; q++)
            {
                float* src = j.B + (long)(jc + jr + q) * j.Ldb + pc;
                for (int p = 0; p < kc; p++) panel[p * NR2 + q] = src[p];
            }
        }
    }

    // dst[i·ldd + r] = src[r·lds + i] for an 8×8 block.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, long lds, float* dst, int ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20)); Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20)); Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31)); Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31)); Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// C[6×16] += alpha·Σₚ a[p·6 + r]·b[p·16 + q]; a partial tile (mr &lt; 6 or nr &lt; 16, zero-padded panels) goes
    /// through <paramref name="tile"/> and only its valid part is added.
    /// </summary>
    private static void Kernel6x16(float* a, float* b, int kc, float* c, int ldc, float alpha, int mr, int nr, float* tile)
    {
        var c00 = Vector256<float>.Zero; var c01 = c00; var c10 = c00; var c11 = c00; var c20 = c00; var c21 = c00;
        var c30 = c00; var c31 = c00; var c40 = c00; var c41 = c00; var c50 = c00; var c51 = c00;
        for (int p = 0; p < kc; p++, a += MR2, b += NR2)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        var al = Vector256.Create(alpha);
        if (mr == MR2 && nr == NR2)
        {
            Add(c, c00, c01, al); Add(c + ldc, c10, c11, al); Add(c + 2L * ldc, c20, c21, al);
            Add(c + 3L * ldc, c30, c31, al); Add(c + 4L * ldc, c40, c41, al); Add(c + 5L * ldc, c50, c51, al);
            return;
        }
        Vector256.Store(c00, tile); Vector256.Store(c01, tile + 8); Vector256.Store(c10, tile + 16); Vector256.Store(c11, tile + 24);
        Vector256.Store(c20, tile + 32); Vector256.Store(c21, tile + 40); Vector256.Store(c30, tile + 48); Vector256.Store(c31, tile + 56);
        Vector256.Store(c40, tile + 64); Vector256.Store(c41, tile + 72); Vector256.Store(c50, tile + 80); Vector256.Store(c51, tile + 88);
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < nr; q++) c[(long)r * ldc + q] += alpha * tile[r * NR2 + q];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Add(float* row, Vector256<float> v0, Vector256<float> v1, Vector256<float> al)
        {
            Vector256.Store(Vector256.FusedMultiplyAdd(al, v0, Vector256.Load(row)), row);
            Vector256.Store(Vector256.FusedMultiplyAdd(al, v1, Vector256.Load(row + 8)), row + 8);
        }
    }

    // ------------------------------------------------------------------ skinny A·Bᵀ (m ≤ 4 rows), Vector256

    /// <summary>How SkinnyDots256 reads B's elements: float32, or bfloat16 widened as loaded.</summary>
    private interface IWeightRows256
    {
        static abstract void* Base(ref Skinny s);
        static abstract Vector256<float> Load(void* b, long index);
        static abstract float At(void* b, long index);
    }

    private struct SingleRows256 : IWeightRows256
    {
        public static void* Base(ref Skinny s) => s.B;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(void* b, long index) => Vector256.Load((float*)b + index);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float At(void* b, long index) => ((float*)b)[index];
    }

    private struct BFloat16Rows256 : IWeightRows256
    {
        public static void* Base(ref Skinny s) => s.B16;
        // Eight bfloat16 values widened to float32 (the bits shifted into the high half), as BFloat16.ToSingle does.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(void* b, long index)
        {
            var u = Vector128.Load((ushort*)b + index);
            return Vector256.ShiftLeft(Vector256.Create(Vector128.WidenLower(u), Vector128.WidenUpper(u)), 16).AsSingle();
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float At(void* b, long index) => BFloat16.ToSingle(((ushort*)b)[index]);
    }

    // C[i, j] = beta·C[i, j] + alpha·dot(A[i, :], B[j, :]): four weight rows at a time against each row of A (four
    // streams keep memory busy), then one at a time.
    private static void SkinnyDots256<TW>(ref Skinny s, int j0, int j1) where TW : struct, IWeightRows256
    {
        int m = s.M, k = s.K, k8 = k & ~7;
        long ld = s.Ldb;
        void* bw = TW.Base(ref s);
        int j = j0;
        for (; j + 4 <= j1; j += 4)
        {
            long r0 = (long)j * ld;
            for (int i = 0; i < m; i++)
            {
                float* arow = s.A + (long)i * s.Lda;
                var d0 = Vector256<float>.Zero; var d1 = d0; var d2 = d0; var d3 = d0;
                int p = 0;
                for (; p < k8; p += 8)
                {
                    var av = Vector256.Load(arow + p);
                    d0 = Vector256.FusedMultiplyAdd(av, TW.Load(bw, r0 + p), d0);
                    d1 = Vector256.FusedMultiplyAdd(av, TW.Load(bw, r0 + ld + p), d1);
                    d2 = Vector256.FusedMultiplyAdd(av, TW.Load(bw, r0 + 2 * ld + p), d2);
                    d3 = Vector256.FusedMultiplyAdd(av, TW.Load(bw, r0 + 3 * ld + p), d3);
                }
                float x0 = Vector256.Sum(d0), x1 = Vector256.Sum(d1), x2 = Vector256.Sum(d2), x3 = Vector256.Sum(d3);
                for (; p < k; p++)
                {
                    float av = arow[p];
                    x0 += av * TW.At(bw, r0 + p); x1 += av * TW.At(bw, r0 + ld + p);
                    x2 += av * TW.At(bw, r0 + 2 * ld + p); x3 += av * TW.At(bw, r0 + 3 * ld + p);
                }
                float* crow = s.C + (long)i * s.Ldc + j;
                Put(crow, s.Alpha * x0, s.Beta); Put(crow + 1, s.Alpha * x1, s.Beta);
                Put(crow + 2, s.Alpha * x2, s.Beta); Put(crow + 3, s.Alpha * x3, s.Beta);
            }
        }
        for (; j < j1; j++)
        {
            long r0 = (long)j * ld;
            for (int i = 0; i < m; i++)
            {
                float* arow = s.A + (long)i * s.Lda;
                var d0 = Vector256<float>.Zero;
                int p = 0;
                for (; p < k8; p += 8) d0 = Vector256.FusedMultiplyAdd(Vector256.Load(arow + p), TW.Load(bw, r0 + p), d0);
                float x0 = Vector256.Sum(d0);
                for (; p < k; p++) x0 += arow[p] * TW.At(bw, r0 + p);
                Put(s.C + (long)i * s.Ldc + j, s.Alpha * x0, s.Beta);
            }
        }
    }
}
