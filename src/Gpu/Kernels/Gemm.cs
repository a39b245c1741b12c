using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one GEMM call (row-major, leading dimensions in elements).</summary>
internal struct GemmArgs
{
    public int M, N, K, Lda, Ldb, Ldc, TransA, TransB;
    public float Alpha, Beta;
}

/// <summary>Where the products of a batched GEMM start: product p is (sample p / Heads, head p % Heads), at
/// sample·A + head·AHead in a, and so on (one level, Heads = 1, for a plain batch).</summary>
internal struct BatchStrides
{
    public long A, B, C, AHead, BHead, CHead;
    public int Heads;

    public readonly long OffsetA(long p) => p / Heads * A + p % Heads * AHead;
    public readonly long OffsetB(long p) => p / Heads * B + p % Heads * BHead;
    public readonly long OffsetC(long p) => p / Heads * C + p % Heads * CHead;
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, BatchStrides>? _gemmBatched;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemmTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemmSimple;

    /// <summary>
    /// C[M×N] = alpha·op(A)·op(B) + beta·C, row-major, op = transpose when asked (A is K×M, B is N×K then). beta 0
    /// never reads C. On a GPU cuBLAS where it loads (<see cref="GpuDevice.GemmBackend"/>), else a shared-memory tiled
    /// kernel; on the CPU accelerator, whose group barriers cost hundreds of times the arithmetic, one thread per
    /// element of C.
    /// </summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        var args = GemmChecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (!_device.LaunchesLikeCuda) GemmSimple(a, b, c, args);
        else if (_device.Blas is { } blas) { Launched(); blas.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
        else GemmTiled(a, b, c, args);
    }

    /// <summary>
    /// <paramref name="count"/> independent products C_p = alpha·op(A_p)·op(B_p) + beta·C_p, each matrix dense and
    /// row-major (A_p is M×K, or K×M transposed; B_p K×N, or N×K) at <paramref name="strideA"/>·p and so on: MatMul
    /// over a batch of heads or samples, grouped convolutions. One launch: on a GPU cuBLAS's strided batched GEMM, or
    /// the shared-memory tiled kernel with a third grid dimension over the products; on the CPU accelerator one thread
    /// per output element.
    /// </summary>
    public void GemmBatched(bool transA, bool transB, int count, int m, int n, int k, float alpha, ArrayView<float> a, long strideA, ArrayView<float> b, long strideB,
        float beta, ArrayView<float> c, long strideC)
    {
        if (count <= 0 || m <= 0 || n <= 0) return;
        var (args, strides) = GemmBatchedChecked(transA, transB, count, m, n, k, alpha, a, strideA, b, strideB, beta, c, strideC);
        Batched(a, b, c, args, strides, count);
    }

    /// <summary>A checked batch on what the device runs it: cuBLAS where its batched GEMMs are bound, else the tiled
    /// kernel on a GPU, one thread per output on the CPU accelerator.</summary>
    private void Batched(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args, BatchStrides strides, int count)
    {
        if (!_device.LaunchesLikeCuda) GemmBatchedSimple(a, b, c, args, strides, count);
        else if (_device.Blas?.Batched is { } blas) { Launched(); blas.Gemm(args, strides, count, a, b, c); }
        else GemmBatchedTiled(a, b, c, args, strides, count);
    }

    /// <summary>The tiled batched kernel whatever the device (tests run it on the CPU accelerator at small sizes).</summary>
    internal void GemmBatchedTiled(bool transA, bool transB, int count, int m, int n, int k, float alpha, ArrayView<float> a, long strideA, ArrayView<float> b, long strideB,
        float beta, ArrayView<float> c, long strideC)
    {
        var (args, strides) = GemmBatchedChecked(transA, transB, count, m, n, k, alpha, a, strideA, b, strideB, beta, c, strideC);
        GemmBatchedTiled(a, b, c, args, strides, count);
    }

    private static (GemmArgs, BatchStrides) GemmBatchedChecked(bool transA, bool transB, int count, int m, int n, int k, float alpha, ArrayView<float> a, long strideA,
        ArrayView<float> b, long strideB, float beta, ArrayView<float> c, long strideC)
    {
        Need(a, (count - 1) * strideA + (long)m * k, nameof(a)); Need(b, (count - 1) * strideB + (long)k * n, nameof(b)); Need(c, (count - 1) * strideC + (long)m * n, nameof(c));
        var args = new GemmArgs { M = m, N = n, K = k, Lda = transA ? m : k, Ldb = transB ? k : n, Ldc = n, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Alpha = alpha, Beta = beta };
        return (args, new BatchStrides { A = strideA, B = strideB, C = strideC, Heads = 1 });
    }

    /// <summary>
    /// <paramref name="batch"/>·<paramref name="heads"/> products C = alpha·op(A)·op(B) (beta 0: overwritten) whose
    /// matrices are column blocks of wider rows: the operands of product (sample s, head h) start at
    /// s·<paramref name="aSample"/> + h·<paramref name="aHead"/> with row stride <paramref name="lda"/>, and so on.
    /// Multi-head attention's products over [B, T, E] activations with head h in columns [h·D, (h+1)·D), in one launch
    /// (cuBLAS's batched GEMM over a table of the products' addresses on a GPU, or the tiled kernel).
    /// </summary>
    internal void GemmPerHead(bool transA, bool transB, int batch, int heads, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, long aSample, long aHead, ArrayView<float> b, int ldb, long bSample, long bHead, ArrayView<float> c, int ldc, long cSample, long cHead)
    {
        var (args, strides) = GemmPerHeadChecked(transA, transB, batch, heads, m, n, k, alpha, a, lda, aSample, aHead, b, ldb, bSample, bHead, c, ldc, cSample, cHead);
        Batched(a, b, c, args, strides, batch * heads);
    }

    /// <summary><see cref="GemmPerHead"/> through the tiled kernel whatever the device (tests run it on the CPU accelerator).</summary>
    internal void GemmPerHeadTiled(bool transA, bool transB, int batch, int heads, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, long aSample, long aHead, ArrayView<float> b, int ldb, long bSample, long bHead, ArrayView<float> c, int ldc, long cSample, long cHead)
    {
        var (args, strides) = GemmPerHeadChecked(transA, transB, batch, heads, m, n, k, alpha, a, lda, aSample, aHead, b, ldb, bSample, bHead, c, ldc, cSample, cHead);
        GemmBatchedTiled(a, b, c, args, strides, batch * heads);
    }

    private static (GemmArgs, BatchStrides) GemmPerHeadChecked(bool transA, bool transB, int batch, int heads, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, long aSample, long aHead, ArrayView<float> b, int ldb, long bSample, long bHead, ArrayView<float> c, int ldc, long cSample, long cHead)
    {
        if (batch <= 0 || heads <= 0 || m <= 0 || n <= 0 || k <= 0)
            throw new ArgumentException($"GemmPerHead: batch {batch}, heads {heads}, M {m}, N {n} and K {k} must be positive.");
        long last = (long)(batch - 1), head = heads - 1;
        Need(a, last * aSample + head * aHead + (transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k), nameof(a));
        Need(b, last * bSample + head * bHead + (transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n), nameof(b));
        Need(c, last * cSample + head * cHead + (long)(m - 1) * ldc + n, nameof(c));
        var args = new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Alpha = alpha, Beta = 0f };
        return (args, new BatchStrides { A = aSample, B = bSample, C = cSample, AHead = aHead, BHead = bHead, CHead = cHead, Heads = heads });
    }

    private void GemmBatchedSimple(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args, BatchStrides strides, int count)
    {
        _gemmBatched ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, BatchStrides>(GemmBatchedKernel);
        Launched();
        _gemmBatched(checked(count * args.M * args.N), a, b, c, args, strides);
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, BatchStrides>? _gemmBatchedTiled;

    internal void GemmBatchedTiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args, BatchStrides strides, int count)
    {
        _gemmBatchedTiled ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, BatchStrides>(GemmBatchedTiledKernel);
        int t = Tile;
        var config = new KernelConfig(new Index3D(Groups(args.N, Micro * t), Groups(args.M, Micro * t), count), new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(2 * Micro * t * t));
        Launched();
        _gemmBatchedTiled(config, a, b, c, args, strides);
    }

    /// <summary>The tiled kernel of <see cref="GemmKernel"/> for product Grid.IdxZ of a batch.</summary>
    private static void GemmBatchedTiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p, BatchStrides s)
    {
        long product = Grid.IdxZ;
        TiledProduct(a.SubView(s.OffsetA(product)), b.SubView(s.OffsetB(product)), c.SubView(s.OffsetC(product)), p);
    }

    private static void GemmBatchedKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p, BatchStrides s)
    {
        int at = index;
        int product = at / (p.M * p.N), rest = at % (p.M * p.N), row = rest / p.N, col = rest % p.N;
        long ai = s.OffsetA(product) + (p.TransA != 0 ? row : (long)row * p.Lda), aStep = p.TransA != 0 ? p.Lda : 1;
        long bi = s.OffsetB(product) + (p.TransB != 0 ? (long)col * p.Ldb : col), bStep = p.TransB != 0 ? 1 : p.Ldb;
        float sum = 0f;
        for (int q = 0; q < p.K; q++, ai += aStep, bi += bStep) sum += a[ai] * b[bi];
        long i = s.OffsetC(product) + (long)row * p.Ldc + col;
        c[i] = p.Beta == 0f ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[i];
    }

    private static GemmArgs GemmChecked(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
    {
        Need(a, k == 0 ? 0 : (transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k), nameof(a));
        Need(b, k == 0 ? 0 : (transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n), nameof(b));
        Need(c, (long)(m - 1) * ldc + n, nameof(c));
        return new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Alpha = alpha, Beta = beta };
    }

    /// <summary>The tiled kernel whatever the device (tests run it on the CPU accelerator at small sizes).</summary>
    internal void GemmTiled(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc) => GemmTiled(a, b, c, GemmChecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));

    /// <summary>The one-thread-per-element kernel whatever the device.</summary>
    internal void GemmSimple(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc) => GemmSimple(a, b, c, GemmChecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));

    private void GemmTiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args)
    {
        _gemmTiled ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernel);
        int t = Tile;
        var config = new KernelConfig(new Index2D(Groups(args.N, Micro * t), Groups(args.M, Micro * t)), new Index2D(t, t), SharedMemoryConfig.RequestDynamic<float>(2 * Micro * t * t));
        Launched();
        _gemmTiled(config, a, b, c, args);
    }

    private void GemmSimple(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args)
    {
        _gemmSimple ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmSimpleKernel);
        Launched();
        _gemmSimple(checked(args.M * args.N), a, b, c, args);
    }

    private static void GemmSimpleKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p)
    {
        int row = index / p.N, col = index % p.N;
        long ai = p.TransA != 0 ? row : (long)row * p.Lda, aStep = p.TransA != 0 ? p.Lda : 1;
        long bi = p.TransB != 0 ? (long)col * p.Ldb : col, bStep = p.TransB != 0 ? 1 : p.Ldb;
        float sum = 0f;
        for (int q = 0; q < p.K; q++, ai += aStep, bi += bStep) sum += a[ai] * b[bi];
        long i = (long)row * p.Ldc + col;
        c[i] = p.Beta == 0f ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[i];
    }

    private static void GemmKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p) => TiledProduct(a, b, c, p);

    /// <summary>Outputs per thread along each side: a group of t×t threads computes a (4t)×(4t) tile of C.</summary>
    private const int Micro = 4;

    /// <summary>
    /// One group's (4t)×(4t) tile of C, through K in steps of t staged in shared memory: thread (x, y) keeps the 4×4
    /// outputs at rows y + r·t and columns x + c·t in registers, so each pair of shared-memory reads feeds four
    /// multiply-adds instead of one (the tile's rows are t apart, so a warp's reads of B are consecutive).
    /// </summary>
    private static void TiledProduct(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs p)
    {
        int t = Group.DimX, side = Micro * t;
        int tx = Group.IdxX, ty = Group.IdxY;
        int row0 = Grid.IdxY * side, col0 = Grid.IdxX * side;
        var shared = SharedMemory.GetDynamic<float>();
        var at = shared.SubView(0, side * t);        // [4t rows][t of K]
        var bt = shared.SubView(side * t, t * side); // [t of K][4t columns]
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        for (int k0 = 0; k0 < p.K; k0 += t)
        {
            int ka = k0 + tx, kb = k0 + ty;
            for (int r = 0; r < Micro; r++)
            {
                int i = ty + r * t, row = row0 + i, col = col0 + tx + r * t;
                at[i * t + tx] = row < p.M && ka < p.K ? a[p.TransA != 0 ? (long)ka * p.Lda + row : (long)row * p.Lda + ka] : 0f;
                bt[ty * side + tx + r * t] = kb < p.K && col < p.N ? b[p.TransB != 0 ? (long)col * p.Ldb + kb : (long)kb * p.Ldb + col] : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < t; kk++)
            {
                float a0 = at[ty * t + kk], a1 = at[(ty + t) * t + kk], a2 = at[(ty + 2 * t) * t + kk], a3 = at[(ty + 3 * t) * t + kk];
                int bk = kk * side + tx;
                float b0 = bt[bk], b1 = bt[bk + t], b2 = bt[bk + 2 * t], b3 = bt[bk + 3 * t];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        int r0 = row0 + ty, cl = col0 + tx;
        StoreTileRow(c, p, r0, cl, t, c00, c01, c02, c03);
        StoreTileRow(c, p, r0 + t, cl, t, c10, c11, c12, c13);
        StoreTileRow(c, p, r0 + 2 * t, cl, t, c20, c21, c22, c23);
        StoreTileRow(c, p, r0 + 3 * t, cl, t, c30, c31, c32, c33);
    }

    /// <summary>One thread's four outputs of a row of C (columns t apart), as alpha·sum + beta·C where inside C.</summary>
    private static void StoreTileRow(ArrayView<float> c, GemmArgs p, int row, int col, int t, float s0, float s1, float s2, float s3)
    {
        if (row >= p.M) return;
        PutOutput(c, p, row, col, s0);
        PutOutput(c, p, row, col + t, s1);
        PutOutput(c, p, row, col + 2 * t, s2);
        PutOutput(c, p, row, col + 3 * t, s3);
    }

    private static void PutOutput(ArrayView<float> c, GemmArgs p, int row, int col, float sum)
    {
        if (col >= p.N) return;
        long i = (long)row * p.Ldc + col;
        c[i] = p.Beta == 0f ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[i];
    }
}
