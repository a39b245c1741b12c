using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>Every library kernel against the CPU runtime's kernel (itself tested against libtorch and finite
/// differences) on awkward sizes, on ILGPU's CPU accelerator.</summary>
public sealed class KernelTests(DeviceFixture f) : IClassFixture<DeviceFixture>
{
    private GpuKernels K => f.Device.Kernels;

    [Fact]
    public void Gemm_rejects_views_too_short_for_the_sizes()
    {
        using var a = f.Device.Allocate(5); using var b = f.Device.Allocate(6); using var c = f.Device.Allocate(6);
        var e = Assert.Throws<ArgumentException>(() => K.Gemm(false, false, 2, 3, 3, 1f, a.View, 3, b.View, 3, 0f, c.View, 3));
        Assert.Contains("this call needs 6", e.Message);
    }

    [Fact]
    public void Attention_dropout_is_a_function_of_key_and_stream()
    {
        const int n = 2 * 5 * 4, pr = 2 * 2 * 5 * 5;
        using var q = f.Upload(DeviceFixture.Random(n, 1)); using var ctx = f.Device.Allocate(n); using var probs = f.Device.Allocate(pr);
        float[] Draw(ulong key, int stream)
        {
            using var drop = f.Device.Allocate(pr);
            K.AttentionForward(ctx.View, probs.View, drop.View, q.View, q.View, q.View, default, false, 2, 5, 2, 2, 0.5f, training: true, key, stream);
            return DeviceFixture.Download(drop, pr);
        }
        var a = Draw(1, 3);
        Assert.Equal(a, Draw(1, 3));
        Assert.NotEqual(a, Draw(2, 3));
        Assert.NotEqual(a, Draw(1, 4));
        Assert.InRange(a.Count(m => m == 0f), pr / 4, 3 * pr / 4);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 5)]
    [InlineData(2, 17, 65)]
    public void Sequence_means_and_column_sums_match_the_CPU(int batch, int seq, int dim)
    {
        var x = DeviceFixture.Random(batch * seq * dim, 5); var dy = DeviceFixture.Random(batch * dim, 6);
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - i / seq ? 1 : 0).ToArray();
        if (batch > 1) Array.Clear(mask, seq, seq); // a sample without a real position: zeros, no gradient
        var y = new float[batch * dim]; var dx = DeviceFixture.Random(x.Length, 7);
        var expectedDx = (float[])dx.Clone();
        SequenceKernels.MeanForward(y, x, mask, batch, seq, dim);
        SequenceKernels.MeanBackward(expectedDx, dy, mask, batch, seq, dim);
        using var X = f.Upload(x); using var M = f.Upload(mask); using var Y = f.Device.Allocate(y.Length); using var DY = f.Upload(dy); using var DX = f.Upload(dx);
        K.SequenceMeanForward(Y.View, X.View, M.View, batch, seq, dim);
        K.SequenceMeanBackward(DX.View, DY.View, M.View, batch, seq, dim);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-6f, "mean");
        DeviceFixture.Close(expectedDx, DeviceFixture.Download(DX, dx.Length), 1e-6f, "mean backward");

        // Column sums over 33+ rows cross the kernel's row blocks; they add to what is there.
        int rows = batch * seq * 3, cols = dim;
        var m = DeviceFixture.Random(rows * cols, 8); var sums = DeviceFixture.Random(cols, 9);
        var expected = (float[])sums.Clone();
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) expected[c] += m[r * cols + c];
        using var Mx = f.Upload(m); using var S = f.Upload(sums);
        K.AddColumnSums(S.View, Mx.View, rows, cols);
        DeviceFixture.Close(expected, DeviceFixture.Download(S, cols), 1e-5f, "column sums");
    }

    public static TheoryData<Conv2dGeometry> Geometries => new()
    {
        new Conv2dGeometry(1, 1, 5, 5, 1, 3, 3),
        new Conv2dGeometry(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),
        new Conv2dGeometry(3, 2, 9, 8, 4, 3, 2, 2, 2, 1, 0, 1, 1),
        new Conv2dGeometry(2, 4, 11, 10, 3, 3, 3, 1, 2, 2, 1, 2, 1),
        new Conv2dGeometry(1, 5, 6, 6, 7, 1, 1),
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Conv2d_forward_and_gradients_match_the_CPU_convolution(Conv2dGeometry g)
    {
        var x = DeviceFixture.Random(g.Batch * g.InSize, 4);
        var w = DeviceFixture.Random(g.WeightSize, 5, 0.5f);
        var bias = DeviceFixture.Random(g.OutChannels, 6);
        var dy = DeviceFixture.Random(g.Batch * g.OutSize, 7);
        var scratch = new float[Conv2dKernels.ScratchSize(g)];
        var y = new float[g.Batch * g.OutSize];
        Conv2dKernels.Forward(y, x, w, bias, g, scratch);
        var dx = DeviceFixture.Random(g.Batch * g.InSize, 8);   // both paths add to what is there
        var dw = DeviceFixture.Random(g.WeightSize, 9);
        var dxGpu = (float[])dx.Clone(); var dwGpu = (float[])dw.Clone();
        Conv2dKernels.Backward(dx, dw, dy, x, w, g, scratch);
        var db = new float[g.OutChannels];
        for (int b = 0; b < g.Batch; b++)
            for (int o = 0; o < g.OutChannels; o++)
                for (int p = 0; p < g.OutHeight * g.OutWidth; p++) db[o] += dy[(b * g.OutChannels + o) * g.OutHeight * g.OutWidth + p];

        using var X = f.Upload(x); using var W = f.Upload(w); using var B = f.Upload(bias); using var Y = f.Device.Allocate(y.Length);
        using var S = f.Device.Allocate(GpuKernels.Conv2dScratch(g)); using var DY = f.Upload(dy);
        using var DX = f.Upload(dxGpu); using var DW = f.Upload(dwGpu); using var DB = f.Upload(new float[g.OutChannels]);
        K.Conv2dForward(Y.View, X.View, W.View, B.View, g, S.View);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        K.Conv2dBackward(DX.View, DW.View, DB.View, DY.View, X.View, W.View, g, S.View);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, "dx");
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, dw.Length), 1e-5f, "dw");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, db.Length), 1e-5f, "db");
    }

    [Theory]
    [InlineData(2, 3, 8, 8, 2, 2, 2, 2, 0, 0)]
    [InlineData(1, 2, 7, 9, 3, 3, 2, 2, 1, 1)]
    [InlineData(3, 1, 5, 5, 3, 2, 1, 1, 0, 1)]
    public void MaxPool2d_matches_the_CPU_pooling_forward_and_backward(int b, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = new Pool2dGeometry(b, c, h, w, kh, kw, sh, sw, ph, pw);
        var x = DeviceFixture.Random(b * g.InSize, 10);
        x[3] = x[4]; // a tie: both pick the first
        var y = new float[b * g.OutSize]; var arg = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x, g);
        var dy = DeviceFixture.Random(y.Length, 11);
        var dx = new float[x.Length];
        PoolingKernels.MaxPool2dBackward(dx, dy, arg, g);

        using var X = f.Upload(x); using var Y = f.Device.Allocate(y.Length); using var A = f.Device.AllocateInts(y.Length);
        using var DY = f.Upload(dy); using var DX = f.Upload(new float[x.Length]);
        K.MaxPool2dForward(Y.View, A.View, X.View, g);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 0f, "y");
        var argGpu = new int[y.Length]; A.View.SubView(0, y.Length).CopyToCPU(argGpu);
        Assert.Equal(arg, argGpu);
        K.MaxPool2dBackward(DX.View, DY.View, A.View, g);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-6f, "dx");

        // With the ReLU after it in the same kernel: the CPU's pool, then its ReLU, and back through both (inputs moved
        // down so that some windows are wholly negative).
        var xs = x.Select(v => v - 0.8f).ToArray();
        var ys = new float[y.Length]; var args = new int[y.Length];
        PoolingKernels.MaxPool2dForward(ys, args, xs, g);
        var relu = ys.Select(Elementwise.Relu).ToArray();
        Assert.Contains(relu, v => v == 0f);
        var dxRelu = new float[x.Length];
        PoolingKernels.MaxPool2dBackward(dxRelu, dy.Select((d, i) => Elementwise.ReluGrad(relu[i], d)).ToArray(), args, g);
        using var XS = f.Upload(xs); using var R = f.Device.Allocate(y.Length); using var DXR = f.Upload(new float[x.Length]);
        K.MaxPool2dReluForward(R.View, A.View, XS.View, g);
        DeviceFixture.Close(relu, DeviceFixture.Download(R, y.Length), 0f, "ReLU(max)");
        K.MaxPool2dReluBackward(DXR.View, DY.View, R.View, A.View, g);
        DeviceFixture.Close(dxRelu, DeviceFixture.Download(DXR, dx.Length), 1e-6f, "dx through the ReLU");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 255)]
    [InlineData(5, 257)]
    [InlineData(2, 1030)]
    public void Row_sums_and_adds_are_exact_enough(int rows, int cols)
    {
        var x = DeviceFixture.Random(rows * cols, 13);
        var start = DeviceFixture.Random(rows, 14);
        var expected = Enumerable.Range(0, rows).Select(r => start[r] + (float)Enumerable.Range(0, cols).Sum(q => (double)x[r * cols + q])).ToArray();
        using var X = f.Upload(x); using var S = f.Upload(start);
        K.AddRowSums(S.View, X.View, rows, cols);
        DeviceFixture.Close(expected, DeviceFixture.Download(S, rows), 1e-5f, "sums");

        var y = DeviceFixture.Random(rows * cols, 15);
        using var Y = f.Upload(y); using var Z = f.Device.Allocate(x.Length);
        K.Add(Z.View, X.View, Y.View, x.Length);
        DeviceFixture.Close(x.Zip(y, (p, q) => p + q).ToArray(), DeviceFixture.Download(Z, x.Length), 0f, "add");
        K.AddTo(Y.View, X.View, x.Length);
        DeviceFixture.Close(x.Zip(y, (p, q) => p + q).ToArray(), DeviceFixture.Download(Y, x.Length), 0f, "addTo");
    }

    [Fact]
    public void Launches_are_counted()
    {
        using var a = f.Upload(new float[] { 1 }); using var b = f.Upload(new float[] { 2 }); using var c = f.Device.Allocate(1);
        long before = f.Device.LaunchCount;
        K.Add(c.View, a.View, b.View, 1);
        K.Gemm(false, false, 1, 1, 1, 1f, a.View, 1, b.View, 1, 0f, c.View, 1);
        Assert.Equal(before + 2, f.Device.LaunchCount);
    }
}

/// <summary>Philox4x32-10 against Random123's known-answer vectors, and its uniforms' spread.</summary>
public sealed class PhiloxTests
{
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void Block_matches_Random123s_known_answers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3) =>
        Assert.Equal((r0, r1, r2, r3), Philox.Block(c0, c1, c2, c3, k0, k1));

    [Fact]
    public void Uniforms_are_spread_evenly_and_differ_by_key_and_stream()
    {
        int n = 100_000, below = 0;
        double sum = 0;
        for (int i = 0; i < n; i++) { float u = Philox.Uniform(42, i, 3); sum += u; if (u < 0.25f) below++; Assert.InRange(u, 0f, 0.99999995f); }
        Assert.InRange(sum / n, 0.495, 0.505);
        Assert.InRange(below / (double)n, 0.245, 0.255);
        Assert.NotEqual(Philox.Uniform(42, 7, 3), Philox.Uniform(43, 7, 3));
        Assert.NotEqual(Philox.Uniform(42, 7, 3), Philox.Uniform(42, 7, 4));
    }
}

/// <summary>The arguments the row-major GEMMs pass to cuBLAS (column-major), run through a column-major GEMM written from
/// BLAS's definition and compared with the CPU's row-major GEMM: the mapping is right before any GPU runs it.</summary>
public sealed class CuBlasMappingTests
{
    /// <summary>BLAS sgemm: C = alpha·op(X)·op(Y) + beta·C, every matrix column-major (element (i, j) at i + j·ld); with
    /// beta 0, C is not read (BLAS's rule: it may hold anything, NaN included).</summary>
    internal static void ColumnMajorSgemm(bool tx, bool ty, int m, int n, int k, float alpha, ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> y, int ldy, float beta, Span<float> c, int ldc)
    {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (double)(tx ? x[p + i * ldx] : x[i + p * ldx]) * (ty ? y[j + p * ldy] : y[p + j * ldy]);
                c[i + j * ldc] = (float)(alpha * sum + (beta == 0f ? 0 : beta * c[i + j * ldc]));
            }
    }

    [Theory]
    [InlineData(false, false, 37, 29, 19)]
    [InlineData(false, true, 5, 17, 7)]
    [InlineData(true, false, 17, 3, 9)]
    [InlineData(true, true, 8, 13, 1)]
    public void Row_major_products_map_onto_the_column_major_call(bool ta, bool tb, int m, int n, int k)
    {
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
        var a = DeviceFixture.Random((ta ? k : m) * lda, 1); var b = DeviceFixture.Random((tb ? n : k) * ldb, 2);
        var c = DeviceFixture.Random(m * ldc, 3);
        var expected = (float[])c.Clone();
        Compiled.Nets.Kernels.Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
        var call = ColumnMajorCall.Of(ta, tb, m, n, k, lda, ldb, ldc);
        ColumnMajorSgemm(call.TransFirst, call.TransSecond, call.M, call.N, call.K, 0.75f, call.FirstIsB ? b : a, call.LdFirst, call.FirstIsB ? a : b, call.LdSecond, 0.5f, c, call.Ldc);
        DeviceFixture.Close(expected, c, 1e-5f, "C");
    }

    /// <summary>
    /// Batches of row-major products as cuBLAS's batched calls take them: attention's per-head products (heads as column
    /// blocks of [B, T, E] rows: a table of addresses), heads stored one after another ([B, H, T, T]: one stride) and a
    /// plain batch with beta (one stride), each product run column-major at the offsets the call gives, as cuBLAS's
    /// definitions of cublasSgemmStridedBatched and cublasSgemmBatched place them.
    /// </summary>
    [Theory]
    [InlineData(false, true, "per head")]
    [InlineData(false, false, "per head")]
    [InlineData(true, false, "per head")]
    [InlineData(true, true, "consecutive heads")]
    [InlineData(false, true, "plain")]
    [InlineData(true, false, "plain")]
    public void Batched_row_major_products_map_onto_cuBLAS_batched_calls(bool ta, bool tb, string layout)
    {
        const int batch = 3, heads = 2, m = 5, n = 7, k = 4;
        int wa = ta ? m : k, wb = tb ? k : n, ra = ta ? k : m, rb = tb ? n : k;
        GemmArgs args;
        BatchStrides s;
        int count;
        if (layout == "plain")
        {
            args = new GemmArgs { M = m, N = n, K = k, Lda = wa + 1, Ldb = wb + 2, Ldc = n + 3, Alpha = 0.75f, Beta = 0.5f };
            s = new BatchStrides { A = (long)ra * (wa + 1) + 5, B = (long)rb * (wb + 2) + 1, C = (long)m * (n + 3) + 2, Heads = 1 };
            count = batch;
        }
        else
        {
            bool interleaved = layout == "per head";
            int lda = interleaved ? heads * wa : wa, ldb = interleaved ? heads * wb : wb, ldc = interleaved ? heads * n : n;
            args = new GemmArgs { M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, Alpha = 0.75f };
            s = interleaved
                ? new BatchStrides { A = (long)ra * lda, B = (long)rb * ldb, C = (long)m * ldc, AHead = wa, BHead = wb, CHead = n, Heads = heads }
                : new BatchStrides { A = heads * (long)ra * wa, B = heads * (long)rb * wb, C = heads * (long)m * n, AHead = (long)ra * wa, BHead = (long)rb * wb, CHead = (long)m * n, Heads = heads };
            count = batch * heads;
        }
        args.TransA = ta ? 1 : 0; args.TransB = tb ? 1 : 0;
        var a = DeviceFixture.Random((int)(count / s.Heads * s.A), 1); var b = DeviceFixture.Random((int)(count / s.Heads * s.B), 2);
        var c = DeviceFixture.Random((int)(count / s.Heads * s.C), 3);
        var expected = (float[])c.Clone();
        for (int p = 0; p < count; p++)
            Compiled.Nets.Kernels.Gemm.Sgemm(ta, tb, m, n, k, args.Alpha, a.AsSpan((int)s.OffsetA(p)), args.Lda, b.AsSpan((int)s.OffsetB(p)), args.Ldb,
                args.Beta, expected.AsSpan((int)s.OffsetC(p)), args.Ldc);

        var call = BatchedColumnMajorCall.Of(args, s);
        Assert.Equal(layout != "per head", call.Strided);
        var cm = call.Call;
        for (int p = 0; p < count; p++)
        {
            var (first, second, result) = call.Strided ? (p * call.StrideFirst, p * call.StrideSecond, p * call.StrideC) : call.Offsets(s, p);
            ColumnMajorSgemm(cm.TransFirst, cm.TransSecond, cm.M, cm.N, cm.K, args.Alpha, (cm.FirstIsB ? b : a).AsSpan((int)first), cm.LdFirst,
                (cm.FirstIsB ? a : b).AsSpan((int)second), cm.LdSecond, args.Beta, c.AsSpan((int)result), cm.Ldc);
        }
        DeviceFixture.Close(expected, c, 1e-5f, "C");
    }
}
