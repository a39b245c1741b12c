using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compiled.Nets.Kernels;

// Dims: N rows (batch, or batch×tokens), I in-features, O out-features. Weight in PyTorch layout [O, I].
// Bias is not applied here: the generated code adds it in the fused elementwise epilogue.
public static unsafe class LinearKernels
{
    /// <summary>y[N,O] = x[N,I] · w[O,I]ᵀ (overwrites y).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures)
        => Gemm.Sgemm(false, true, rows, outFeatures, inFeatures, 1f, x, inFeatures, w, inFeatures, 0f, y, outFeatures);

    /// <summary>
    /// y[N,O] = x·wᵀ reading <paramref name="wBFloat16"/>, the weights rounded to bfloat16, when it is not empty and N
    /// is at most 4 (batch-1..4 inference streams the weights once, so half the bytes is nearly half the time); the
    /// float32 weights <paramref name="w"/> otherwise. Generated inference passes
    /// <see cref="ParameterStore.BFloat16Value"/>, which is empty unless the store was made read-only for bfloat16.
    /// </summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<ushort> wBFloat16, int rows, int inFeatures, int outFeatures)
    {
        if (wBFloat16.IsEmpty || rows > MaxBFloat16Rows) { Forward(y, x, w, rows, inFeatures, outFeatures); return; }
        if (wBFloat16.Length != w.Length)
            throw new ArgumentException($"Linear: the bfloat16 weights hold {wBFloat16.Length} values, the float32 ones {w.Length}.", nameof(wBFloat16));
        Gemm.SkinnyBFloat16(rows, outFeatures, inFeatures, x, wBFloat16, y);
    }

    /// <summary>Batches up to this size read bfloat16 weights when given (larger ones are bound by arithmetic, not reads).</summary>
    public const int MaxBFloat16Rows = 4;

    /// <summary>
    /// True when a batch of <paramref name="rows"/> rows reads the transposed copy given to
    /// <see cref="ForwardSparseInput"/>:
    /// batch 1..4 on AVX-512 or AVX2 hardware, out-features a multiple of 16 and at least 2^16 weights (smaller layers
    /// are not worth a copy). Generated inference asks the store for the copy only then.
    /// </summary>
    public static bool UsesTransposed(int rows, int inFeatures, int outFeatures) =>
        (Gemm.UsesAvx512 || Gemm.UsesVector256) && rows >= 1 && rows <= MaxBFloat16Rows && inFeatures > 0 && outFeatures % 16 == 0 && (long)inFeatures * outFeatures >= 1 << 16;

    /// <summary>
    /// y[N,O] = x·wᵀ for a layer whose input is mostly zeros (a ReLU's output): when <see cref="UsesTransposed"/> holds
    /// and <paramref name="wt"/> (the weights as [I, O], float32 or bfloat16, from
    /// <see cref="ParameterStore.TransposedValue"/>) is not empty, row k of wt is added, times x[n, k], only for the
    /// inputs k that are not zero in some row; a zero input contributes nothing, as 0·w for any finite w. Otherwise
    /// the dense product of <paramref name="w"/>.
    /// </summary>
    /// <remarks>A trained ConvNet's first Linear layer sees 85 % zeros, so batch-1 inference reads a sixth of its
    /// weights. Sums run over the inputs in ascending order, whichever core computes which outputs.</remarks>
    public static void ForwardSparseInput(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, TransposedWeights wt, int rows, int inFeatures, int outFeatures)
    {
        if (wt.IsEmpty || !UsesTransposed(rows, inFeatures, outFeatures)) { Forward(y, x, w, rows, inFeatures, outFeatures); return; }
        SparseInput(y, x, w, wt, rows, inFeatures, outFeatures, vector256: !Gemm.UsesAvx512, DenseAbove);
    }

    // Float32 rows of the transposed copy stream slower than the dense product's rows (they are short and far apart),
    // so with more than this share of the inputs non-zero the dense product is faster (bfloat16 rows never lose: the
    // dense product would read float32).
    private const double DenseAbove = 0.5;

    /// <summary>The transposed product itself; <paramref name="vector256"/> picks the Vector256 tiles and
    /// <paramref name="denseAbove"/> the share of non-zero inputs above which float32 runs dense (tests run every path).</summary>
    internal static void SparseInput(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, TransposedWeights wt, int rows, int inFeatures, int outFeatures, bool vector256, double denseAbove)
    {
        if (rows < 1 || rows > MaxBFloat16Rows || outFeatures % 16 != 0)
            throw new ArgumentException($"Linear: the transposed product takes 1..{MaxBFloat16Rows} rows and a multiple of 16 out-features, not {rows} rows and {outFeatures}.");
        long size = (long)inFeatures * outFeatures;
        if (wt.Length != size)
            throw new ArgumentException($"Linear: the transposed weights hold {wt.Length} values, [{inFeatures}, {outFeatures}] needs {size}.", nameof(wt));
        if (x.Length < (long)rows * inFeatures || y.Length < (long)rows * outFeatures)
            throw new ArgumentException($"Linear: x ({x.Length}) or y ({y.Length}) is too short for {rows} rows of {inFeatures} -> {outFeatures}.");
        var active = ActiveInputs.ForThisThread(inFeatures);
        int count;
        fixed (float* px = x) fixed (int* pk = active) count = ActiveInputs.Find(px, rows, inFeatures, pk);
        if (wt.BFloat16.IsEmpty && count > denseAbove * inFeatures) { Forward(y, x, w, rows, inFeatures, outFeatures); return; }
        fixed (float* px = x) fixed (float* py = y) fixed (float* pw = wt.Single) fixed (ushort* pw16 = wt.BFloat16) fixed (int* pk = active)
        {
            var s = new SparseRows { X = px, Y = py, W = pw, W16 = pw16, Active = pk, M = rows, I = inFeatures, O = outFeatures, Count = count, Vector256 = vector256 };
            // Both cores once the rows to read hold 256 KB or more; below that, waking the worker costs more.
            if ((long)count * outFeatures * (pw16 != null ? sizeof(ushort) : sizeof(float)) >= 1L << 18) HelperThread.Run(&SparseHalf, &s);
            else SparseColumns(ref s, 0, outFeatures);
        }
    }

    /// <summary>
    /// w [rows, cols] transposed into <paramref name="single"/> or, rounded to bfloat16, into <paramref name="bfloat16"/>
    /// (whichever is not empty) as [cols, rows]: the store's copies for <see cref="ForwardSparseInput"/>. A serving
    /// process makes them before its first answer, so both cores take 16-row blocks, gathering a column's 16 values
    /// at a time.
    /// </summary>
    internal static void Transpose(ReadOnlySpan<float> w, int rows, int cols, Span<float> single, Span<ushort> bfloat16)
    {
        long size = (long)rows * cols;
        if (w.Length < size || (single.IsEmpty ? bfloat16.Length : single.Length) < size)
            throw new ArgumentException($"Transpose: [{rows}, {cols}] needs {size} values (source {w.Length}, destination {Math.Max(single.Length, bfloat16.Length)}).");
        fixed (float* pw = w) fixed (float* pf = single) fixed (ushort* ph = bfloat16)
        {
            var t = new TransposeArgs { W = pw, Single = pf, BFloat16 = ph, Rows = rows, Cols = cols };
            int blocks = (rows + 15) / 16;
            if (size >= 1 << 16) HelperThread.ForBlocks(&TransposeBlocks, &t, blocks, Math.Max(1, blocks / 16));
            else TransposeBlocks(&t, 0, 0, blocks);
        }
    }

    private struct TransposeArgs
    {
        public float* W, Single;
        public ushort* BFloat16;
        public int Rows, Cols;
    }

    private static void TransposeBlocks(void* state, int half, int b0, int b1)
    {
        ref var t = ref *(TransposeArgs*)state;
        long rows = t.Rows, cols = t.Cols;
        var index = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * t.Cols;
        for (int b = b0; b < b1; b++)
        {
            int r0 = b * 16;
            if (r0 + 16 <= rows && Avx2.IsSupported)
            {
                // Column c of the block's 16 rows: two gathers (the 16 source lines stay in cache for the next 15 columns).
                float* src = t.W + r0 * cols, src8 = src + 8 * cols;
                for (long c = 0; c < cols; c++)
                {
                    var lo = Avx2.GatherVector256(src + c, index, 4);
                    var hi = Avx2.GatherVector256(src8 + c, index, 4);
                    if (t.Single != null) { lo.Store(t.Single + c * rows + r0); hi.Store(t.Single + c * rows + r0 + 8); }
                    else BFloat16.Narrow(BFloat16.FromSingle8(lo), BFloat16.FromSingle8(hi)).Store(t.BFloat16 + c * rows + r0);
                }
                continue;
            }
            for (long c = 0; c < cols; c++)
                for (long r = r0; r < Math.Min(r0 + 16, rows); r++)
                {
                    float v = t.W[r * cols + c];
                    if (t.Single != null) t.Single[c * rows + r] = v;
                    else t.BFloat16[c * rows + r] = BFloat16.FromSingle(v);
                }
        }
    }

    private struct SparseRows
    {
        public float* X, Y, W;
        public ushort* W16;
        public int* Active;
        public int M, I, O, Count;
        public bool Vector256;
    }

    /// <summary>The inputs that are not zero in some row, in ascending order, in a per-thread buffer.</summary>
    private static class ActiveInputs
    {
        [ThreadStatic] private static int[]? t_buffer;

        public static int[] ForThisThread(int inFeatures)
        {
            var b = t_buffer;
            if (b == null || b.Length < inFeatures) t_buffer = b = GC.AllocateUninitializedArray<int>(Math.Max(inFeatures, 1024), pinned: true);
            return b;
        }

        public static int Find(float* x, int rows, int inFeatures, int* active)
        {
            int n = 0, k = 0;
            for (; k + 8 <= inFeatures; k += 8)
            {
                uint zero = uint.MaxValue;
                for (int r = 0; r < rows; r++)
                    zero &= Vector256.Equals(Vector256.Load(x + (long)r * inFeatures + k), Vector256<float>.Zero).ExtractMostSignificantBits();
                uint bits = ~zero & 0xFF;
                while (bits != 0)
                {
                    active[n++] = k + BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
            for (; k < inFeatures; k++)
            {
                bool any = false;
                for (int r = 0; r < rows; r++) any |= x[(long)r * inFeatures + k] != 0f;
                if (any) active[n++] = k;
            }
            return n;
        }
    }

    private static void SparseHalf(void* state, int half)
    {
        ref var s = ref *(SparseRows*)state;
        int mid = (s.O / 2 + 15) / 16 * 16;
        if (half == 0) SparseColumns(ref s, 0, mid); else SparseColumns(ref s, mid, s.O);
    }

    private static void SparseColumns(ref SparseRows s, int j0, int j1)
    {
        if (s.Vector256)
        {
            if (s.W16 != null) SparseColumns256<BFloat16Row256>(ref s, s.W16, j0, j1);
            else SparseColumns256<SingleRow256>(ref s, s.W, j0, j1);
        }
        else if (s.W16 != null) SparseColumns<BFloat16Row>(ref s, s.W16, j0, j1);
        else SparseColumns<SingleRow>(ref s, s.W, j0, j1);
    }

    // Outputs [j0, j1) in register tiles: 256 outputs of one row, or 64 outputs of up to four rows (16 accumulators).
    private static void SparseColumns<TW>(ref SparseRows s, void* w, int j0, int j1) where TW : struct, IRowLoad
    {
        int j = j0;
        if (s.M == 1)
            for (; j + 256 <= j1; j += 256) SparseTile256<TW>(ref s, w, j);
        for (; j + 64 <= j1; j += 64) SparseTile64<TW>(ref s, w, j);
        for (; j < j1; j += 16) SparseTile16<TW>(ref s, w, j);
    }

    private static void SparseTile256<TW>(ref SparseRows s, void* w, int j) where TW : struct, IRowLoad
    {
        var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
        var c8 = c0; var c9 = c0; var c10 = c0; var c11 = c0; var c12 = c0; var c13 = c0; var c14 = c0; var c15 = c0;
        long o = s.O;
        for (int i = 0; i < s.Count; i++)
        {
            int k = s.Active[i];
            var a = Vector512.Create(s.X[k]);
            long q = k * o + j;
            // The rows are far apart and irregular, so the hardware prefetchers cannot run ahead: ask for a later row.
            if (i + PrefetchAhead < s.Count) TW.Prefetch(w, s.Active[i + PrefetchAhead] * o + j, 256);
            c0 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q), c0);
            c1 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 16), c1);
            c2 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 32), c2);
            c3 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 48), c3);
            c4 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 64), c4);
            c5 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 80), c5);
            c6 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 96), c6);
            c7 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 112), c7);
            c8 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 128), c8);
            c9 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 144), c9);
            c10 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 160), c10);
            c11 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 176), c11);
            c12 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 192), c12);
            c13 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 208), c13);
            c14 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 224), c14);
            c15 = Vector512.FusedMultiplyAdd(a, TW.Load(w, q + 240), c15);
        }
        float* y = s.Y + j;
        c0.Store(y); c1.Store(y + 16); c2.Store(y + 32); c3.Store(y + 48); c4.Store(y + 64); c5.Store(y + 80); c6.Store(y + 96); c7.Store(y + 112);
        c8.Store(y + 128); c9.Store(y + 144); c10.Store(y + 160); c11.Store(y + 176); c12.Store(y + 192); c13.Store(y + 208); c14.Store(y + 224); c15.Store(y + 240);
    }

    // Rows past M read row 0 again (always present) and are not stored.
    private static void SparseTile64<TW>(ref SparseRows s, void* w, int j) where TW : struct, IRowLoad
    {
        int m = s.M;
        float* x0 = s.X, x1 = s.X + (m > 1 ? s.I : 0), x2 = s.X + (m > 2 ? 2L * s.I : 0), x3 = s.X + (m > 3 ? 3L * s.I : 0);
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0; var d0 = a0; var d1 = a0; var d2 = a0; var d3 = a0;
        long o = s.O;
        for (int i = 0; i < s.Count; i++)
        {
            int k = s.Active[i];
            long q = k * o + j;
            var w0 = TW.Load(w, q); var w1 = TW.Load(w, q + 16); var w2 = TW.Load(w, q + 32); var w3 = TW.Load(w, q + 48);
            var x = Vector512.Create(x0[k]);
            a0 = Vector512.FusedMultiplyAdd(x, w0, a0); a1 = Vector512.FusedMultiplyAdd(x, w1, a1); a2 = Vector512.FusedMultiplyAdd(x, w2, a2); a3 = Vector512.FusedMultiplyAdd(x, w3, a3);
            x = Vector512.Create(x1[k]);
            b0 = Vector512.FusedMultiplyAdd(x, w0, b0); b1 = Vector512.FusedMultiplyAdd(x, w1, b1); b2 = Vector512.FusedMultiplyAdd(x, w2, b2); b3 = Vector512.FusedMultiplyAdd(x, w3, b3);
            x = Vector512.Create(x2[k]);
            c0 = Vector512.FusedMultiplyAdd(x, w0, c0); c1 = Vector512.FusedMultiplyAdd(x, w1, c1); c2 = Vector512.FusedMultiplyAdd(x, w2, c2); c3 = Vector512.FusedMultiplyAdd(x, w3, c3);
            x = Vector512.Create(x3[k]);
            d0 = Vector512.FusedMultiplyAdd(x, w0, d0); d1 = Vector512.FusedMultiplyAdd(x, w1, d1); d2 = Vector512.FusedMultiplyAdd(x, w2, d2); d3 = Vector512.FusedMultiplyAdd(x, w3, d3);
        }
        Store4(s.Y + j, a0, a1, a2, a3);
        if (m > 1) Store4(s.Y + o + j, b0, b1, b2, b3);
        if (m > 2) Store4(s.Y + 2 * o + j, c0, c1, c2, c3);
        if (m > 3) Store4(s.Y + 3 * o + j, d0, d1, d2, d3);

        static void Store4(float* y, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
        {
            v0.Store(y); v1.Store(y + 16); v2.Store(y + 32); v3.Store(y + 48);
        }
    }

    private static void SparseTile16<TW>(ref SparseRows s, void* w, int j) where TW : struct, IRowLoad
    {
        long o = s.O;
        for (int r = 0; r < s.M; r++)
        {
            float* x = s.X + (long)r * s.I;
            var c = Vector512<float>.Zero;
            for (int i = 0; i < s.Count; i++)
            {
                int k = s.Active[i];
                c = Vector512.FusedMultiplyAdd(Vector512.Create(x[k]), TW.Load(w, k * o + j), c);
            }
            c.Store(s.Y + r * o + j);
        }
    }

    // Without AVX-512 (16 vector registers): 64 outputs of one row, or 16 outputs of up to four rows (8 accumulators).
    private static void SparseColumns256<TW>(ref SparseRows s, void* w, int j0, int j1) where TW : struct, IRowLoad256
    {
        long o = s.O;
        int j = j0;
        if (s.M == 1)
            for (; j + 64 <= j1; j += 64)
            {
                var c0 = Vector256<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                for (int i = 0; i < s.Count; i++)
                {
                    int k = s.Active[i];
                    var a = Vector256.Create(s.X[k]);
                    long q = k * o + j;
                    c0 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q), c0);
                    c1 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 8), c1);
                    c2 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 16), c2);
                    c3 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 24), c3);
                    c4 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 32), c4);
                    c5 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 40), c5);
                    c6 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 48), c6);
                    c7 = Vector256.FusedMultiplyAdd(a, TW.Load(w, q + 56), c7);
                }
                float* y = s.Y + j;
                c0.Store(y); c1.Store(y + 8); c2.Store(y + 16); c3.Store(y + 24); c4.Store(y + 32); c5.Store(y + 40); c6.Store(y + 48); c7.Store(y + 56);
            }
        int m = s.M;
        float* x0 = s.X, x1 = s.X + (m > 1 ? s.I : 0), x2 = s.X + (m > 2 ? 2L * s.I : 0), x3 = s.X + (m > 3 ? 3L * s.I : 0);
        for (; j < j1; j += 16)
        {
            var a0 = Vector256<float>.Zero; var a1 = a0; var b0 = a0; var b1 = a0; var c0 = a0; var c1 = a0; var d0 = a0; var d1 = a0;
            for (int i = 0; i < s.Count; i++)
            {
                int k = s.Active[i];
                long q = k * o + j;
                var w0 = TW.Load(w, q); var w1 = TW.Load(w, q + 8);
                var x = Vector256.Create(x0[k]);
                a0 = Vector256.FusedMultiplyAdd(x, w0, a0); a1 = Vector256.FusedMultiplyAdd(x, w1, a1);
                x = Vector256.Create(x1[k]);
                b0 = Vector256.FusedMultiplyAdd(x, w0, b0); b1 = Vector256.FusedMultiplyAdd(x, w1, b1);
                x = Vector256.Create(x2[k]);
                c0 = Vector256.FusedMultiplyAdd(x, w0, c0); c1 = Vector256.FusedMultiplyAdd(x, w1, c1);
                x = Vector256.Create(x3[k]);
                d0 = Vector256.FusedMultiplyAdd(x, w0, d0); d1 = Vector256.FusedMultiplyAdd(x, w1, d1);
            }
            float* y = s.Y + j;
            a0.Store(y); a1.Store(y + 8);
            if (m > 1) { b0.Store(y + o); b1.Store(y + o + 8); }
            if (m > 2) { c0.Store(y + 2 * o); c1.Store(y + 2 * o + 8); }
            if (m > 3) { d0.Store(y + 3 * o); d1.Store(y + 3 * o + 8); }
        }
    }

    /// <summary>How the Vector256 sparse-input products read 8 weights.</summary>
    private interface IRowLoad256
    {
        static abstract Vector256<float> Load(void* w, long index);
    }

    private struct SingleRow256 : IRowLoad256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(void* w, long index) => Vector256.Load((float*)w + index);
    }

    private struct BFloat16Row256 : IRowLoad256
    {
        // Eight bfloat16 values widened to float32 (the bits shifted into the high half).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(void* w, long index)
        {
            var u = Vector128.Load((ushort*)w + index);
            return Vector256.ShiftLeft(Vector256.Create(Vector128.WidenLower(u), Vector128.WidenUpper(u)), 16).AsSingle();
        }
    }

    /// <summary>How the sparse-input products read 16 weights (a struct type argument, so each form compiles to its own loop).</summary>
    private interface IRowLoad
    {
        static abstract Vector512<float> Load(void* w, long index);
        static abstract void Prefetch(void* w, long index, int count);
    }

    private const int PrefetchAhead = 6;

    private struct SingleRow : IRowLoad
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(void* w, long index) => Vector512.Load((float*)w + index);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Prefetch(void* w, long index, int count)
        {
            byte* p = (byte*)((float*)w + index);
            for (int b = 0; b < count * sizeof(float); b += 64) Sse.Prefetch0(p + b);
        }
    }

    private struct BFloat16Row : IRowLoad
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(void* w, long index) => BFloat16.Load16((ushort*)w + index);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Prefetch(void* w, long index, int count)
        {
            byte* p = (byte*)((ushort*)w + index);
            for (int b = 0; b < count * sizeof(ushort); b += 64) Sse.Prefetch0(p + b);
        }
    }

    /// <summary>
    /// dx[N,I] += dy·w; dw[O,I] += dyᵀ·x. Empty dx/dw skip that gradient. With <paramref name="accumulateDx"/> or
    /// <paramref name="accumulateDw"/> false that gradient is overwritten (the GEMM's beta = 0), so the caller need not
    /// clear it first.
    /// </summary>
    public static void Backward(Span<float> dx, Span<float> dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int inFeatures, int outFeatures,
        bool accumulateDx = true, bool accumulateDw = true)
    {
        if (!dx.IsEmpty) Gemm.Sgemm(false, false, rows, inFeatures, outFeatures, 1f, dy, outFeatures, w, inFeatures, accumulateDx ? 1f : 0f, dx, inFeatures);
        if (!dw.IsEmpty) Gemm.Sgemm(true, false, outFeatures, inFeatures, rows, 1f, dy, outFeatures, x, inFeatures, accumulateDw ? 1f : 0f, dw, inFeatures);
    }

    /// <summary>y[N,O] = x·wᵀ + bias (overwrites y): a projection whose bias is not fused into a following loop.</summary>
    public static void ForwardBias(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int rows, int inFeatures, int outFeatures)
    {
        if (bias.Length < outFeatures) throw new ArgumentException($"Linear: bias has {bias.Length} floats, needs {outFeatures}.");
        Forward(y, x, w, rows, inFeatures, outFeatures);
        Elementwise.AddToEachRow(y, y, bias, rows, outFeatures);
    }

    /// <summary>db[O] += Σ over rows of dy[N,O] (an empty db does nothing).</summary>
    public static void BiasBackward(Span<float> db, ReadOnlySpan<float> dy, int rows, int outFeatures)
    {
        if (!db.IsEmpty) Elementwise.AddRowsInto(db, dy, rows, outFeatures);
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        /// <summary>y = x·wᵀ.</summary>
        public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> w, int rows, int inFeatures, int outFeatures) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            for (int o = 0; o < outFeatures; o++)
            {
                T s = T.Zero;
                for (int i = 0; i < inFeatures; i++) s += x[n * inFeatures + i] * w[o * inFeatures + i];
                y[n * outFeatures + o] = s;
            }
        }

        /// <summary>dx += dy·w, dw += dyᵀ·x.</summary>
        public static void Backward<T>(Span<T> dx, Span<T> dw, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, int rows, int inFeatures, int outFeatures) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < rows; n++)
            for (int o = 0; o < outFeatures; o++)
            {
                T d = dy[n * outFeatures + o];
                for (int i = 0; i < inFeatures; i++)
                {
                    if (!dx.IsEmpty) dx[n * inFeatures + i] += d * w[o * inFeatures + i];
                    if (!dw.IsEmpty) dw[o * inFeatures + i] += d * x[n * inFeatures + i];
                }
            }
        }
    }
}
