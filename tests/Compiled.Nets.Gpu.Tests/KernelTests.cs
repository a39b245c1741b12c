using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>Every library kernel against the CPU runtime's kernel (itself tested against libtorch and finite
/// differences) on awkward sizes, on ILGPU's CPU accelerator.</summary>
public sealed class KernelTests(DeviceFixture f) : IClassFixture<DeviceFixture>
{
    private GpuKernels K => f.Device.Kernels;

    [Theory]
    [InlineData(false, false, 1, 1, 1)]
    [InlineData(false, true, 7, 17, 5)]
    [InlineData(true, false, 17, 7, 63)]
    [InlineData(true, true, 17, 33, 9)]
    [InlineData(false, false, 33, 35, 17)]
    [InlineData(false, true, 3, 5, 0)]
    public void Gemm_matches_the_CPU_gemm_in_every_transpose(bool ta, bool tb, int m, int n, int k)
    {
        // Both kernels: the tiled one a GPU runs and the simple one the CPU accelerator runs.
        GemmCase(ta, tb, m, n, k, tiled: true);
        GemmCase(ta, tb, m, n, k, tiled: false);
    }

    private void GemmCase(bool ta, bool tb, int m, int n, int k, bool tiled)
    {
        int lda = ta ? m + 1 : k + 2, ldb = tb ? k + 3 : n + 1, ldc = n + 2;
        var a = DeviceFixture.Random((ta ? k : m) * lda + 3, 1);
        var b = DeviceFixture.Random((tb ? n : k) * ldb + 3, 2);
        var c = DeviceFixture.Random(m * ldc, 3);
        var expected = (float[])c.Clone();
        Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
        using var da = f.Upload(a); using var db = f.Upload(b); using var dc = f.Upload(c);
        if (tiled) K.GemmTiled(ta, tb, m, n, k, 0.75f, da.View, lda, db.View, ldb, 0.5f, dc.View, ldc);
        else K.GemmSimple(ta, tb, m, n, k, 0.75f, da.View, lda, db.View, ldb, 0.5f, dc.View, ldc);
        DeviceFixture.Close(expected, DeviceFixture.Download(dc, c.Length), 1e-5f, tiled ? "C (tiled)" : "C");
    }

    [Theory]
    [InlineData(false, false, 1, 1, 1, 1)]
    [InlineData(false, true, 3, 7, 5, 17)]
    [InlineData(true, false, 2, 17, 7, 3)]
    [InlineData(true, true, 5, 4, 9, 6)]
    public void Batched_gemm_matches_one_CPU_gemm_per_product(bool ta, bool tb, int count, int m, int n, int k)
    {
        long sa = (long)m * k + 2, sb = (long)k * n + 1, sc = (long)m * n + 3; // gaps between the products stay untouched
        var a = DeviceFixture.Random((int)(count * sa), 1); var b = DeviceFixture.Random((int)(count * sb), 2); var c = DeviceFixture.Random((int)(count * sc), 3);
        var expected = (float[])c.Clone();
        for (int p = 0; p < count; p++)
            Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a.AsSpan((int)(p * sa)), ta ? m : k, b.AsSpan((int)(p * sb)), tb ? k : n, 0.5f, expected.AsSpan((int)(p * sc)), n);
        // Both kernels: the tiled one a GPU runs and the one-thread-per-output one the CPU accelerator runs.
        foreach (bool tiled in new[] { true, false })
        {
            using var da = f.Upload(a); using var db = f.Upload(b); using var dc = f.Upload(c);
            if (tiled) K.GemmBatchedTiled(ta, tb, count, m, n, k, 0.75f, da.View, sa, db.View, sb, 0.5f, dc.View, sc);
            else K.GemmBatched(ta, tb, count, m, n, k, 0.75f, da.View, sa, db.View, sb, 0.5f, dc.View, sc);
            DeviceFixture.Close(expected, DeviceFixture.Download(dc, c.Length), 1e-5f, tiled ? "C (tiled)" : "C");
        }
    }

    [Theory]
    [InlineData(false, true, 1, 1, 1, 1, 1)]     // attention's scores Q·Kᵀ
    [InlineData(false, false, 2, 3, 7, 5, 7)]    // its context P·V, dQ = dS·K
    [InlineData(true, false, 3, 2, 17, 4, 17)]   // dV = Pᵀ·dctx, dK = dSᵀ·Q
    [InlineData(true, true, 2, 2, 5, 3, 6)]
    public void Per_head_gemm_reads_the_heads_column_blocks_in_place(bool ta, bool tb, int batch, int heads, int m, int n, int k)
    {
        // A and B as [batch, rows, heads·cols] activations (head h in columns [h·cols, (h+1)·cols)); C as [batch, heads, m, n].
        int rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n;
        int lda = heads * colsA, ldb = heads * colsB;
        long aSample = (long)rowsA * lda, bSample = (long)rowsB * ldb, cHead = (long)m * n, cSample = heads * cHead;
        var a = DeviceFixture.Random((int)(batch * aSample), 1); var b = DeviceFixture.Random((int)(batch * bSample), 2);
        var expected = new float[batch * cSample];
        for (int s = 0; s < batch; s++)
            for (int h = 0; h < heads; h++)
                Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a.AsSpan((int)(s * aSample + h * colsA)), lda, b.AsSpan((int)(s * bSample + h * colsB)), ldb,
                    0f, expected.AsSpan((int)(s * cSample + h * cHead)), n);
        // Both kernels: the tiled one a GPU runs and the one-thread-per-output one the CPU accelerator runs.
        foreach (bool tiled in new[] { true, false })
        {
            using var da = f.Upload(a); using var db = f.Upload(b); using var dc = f.Upload(DeviceFixture.Random(expected.Length, 3)); // overwritten
            if (tiled) K.GemmPerHeadTiled(ta, tb, batch, heads, m, n, k, 0.75f, da.View, lda, aSample, colsA, db.View, ldb, bSample, colsB, dc.View, n, cSample, cHead);
            else K.GemmPerHead(ta, tb, batch, heads, m, n, k, 0.75f, da.View, lda, aSample, colsA, db.View, ldb, bSample, colsB, dc.View, n, cSample, cHead);
            DeviceFixture.Close(expected, DeviceFixture.Download(dc, expected.Length), 1e-5f, tiled ? "C (tiled)" : "C");
        }
        using var da2 = f.Upload(a); using var db2 = f.Upload(b); using var dc2 = f.Device.Allocate(expected.Length);
        Assert.Throws<ArgumentException>(() => K.GemmPerHead(ta, tb, batch, heads, m, n, k, 1f, da2.View.SubView(0, a.Length - 1), lda, aSample, colsA, db2.View, ldb, bSample, colsB, dc2.View, n, cSample, cHead));
    }

    [Fact]
    public void Gemm_with_beta_zero_ignores_NaN_in_C()
    {
        using var da = f.Upload(new float[] { 1, 2 }); using var db = f.Upload(new float[] { 3, 4 }); using var dc = f.Upload(new[] { float.NaN });
        K.GemmTiled(false, false, 1, 1, 2, 1f, da.View, 2, db.View, 1, 0f, dc.View, 1);
        Assert.Equal(11f, DeviceFixture.Download(dc, 1)[0]);
        using var dn = f.Upload(new[] { float.NaN });
        K.GemmSimple(false, false, 1, 1, 2, 1f, da.View, 2, db.View, 1, 0f, dn.View, 1);
        Assert.Equal(11f, DeviceFixture.Download(dn, 1)[0]);
    }

    [Fact]
    public void Gemm_rejects_views_too_short_for_the_sizes()
    {
        using var a = f.Device.Allocate(5); using var b = f.Device.Allocate(6); using var c = f.Device.Allocate(6);
        var e = Assert.Throws<ArgumentException>(() => K.Gemm(false, false, 2, 3, 3, 1f, a.View, 3, b.View, 3, 0f, c.View, 3));
        Assert.Contains("this call needs 6", e.Message);
    }

    [Theory]
    [InlineData(1, 1, 1, 4, false, false)]
    [InlineData(2, 7, 3, 5, true, false)]
    [InlineData(3, 17, 2, 8, true, true)]
    [InlineData(1, 9, 4, 3, false, true)]
    public void Attention_forward_and_backward_match_the_CPU_kernels(int batch, int seq, int heads, int headSize, bool masked, bool dropout)
    {
        int e = heads * headSize;
        long n = (long)batch * seq * e, pr = (long)batch * heads * seq * seq;
        var q = DeviceFixture.Random((int)n, 1); var k = DeviceFixture.Random((int)n, 2); var v = DeviceFixture.Random((int)n, 3);
        var dctx = DeviceFixture.Random((int)n, 4);
        // Padding at each sample's end, one sample wholly padded (its keys then average uniformly, as on the CPU).
        var mask = new int[batch * seq];
        for (int b = 0; b < batch; b++) for (int t = 0; t < seq; t++) mask[b * seq + t] = t < seq - b * 2 ? 1 : 0;
        if (batch == 3) Array.Clear(mask, 2 * seq, seq);
        using var dq = f.Upload(q); using var dk = f.Upload(k); using var dv = f.Upload(v); using var dm = f.Upload(mask);
        using var ctx = f.Device.Allocate(n); using var probs = f.Device.Allocate(pr); using var drop = f.Device.Allocate(pr);
        K.AttentionForward(ctx.View, probs.View, drop.View, dq.View, dk.View, dv.View, dm.View, masked, batch, seq, heads, headSize, dropout ? 0.3f : 0f, training: true, key: 42, stream: 7);
        // The device keeps P̃ = P ⊙ mask; the mask is 1/(1 − p) where P̃ is not zero (where P is zero it does not matter).
        var dropped = dropout ? DeviceFixture.Download(drop, pr) : [];
        var probsBefore = DeviceFixture.Download(probs, pr);
        var dropMask = dropped.Select(x => x != 0f ? 1f / 0.7f : 0f).ToArray();
        for (int i = 0; i < dropped.Length; i++) Assert.True(Math.Abs(dropped[i] - probsBefore[i] * dropMask[i]) <= 1e-6f, $"P̃[{i}]");
        if (dropout) Assert.InRange(dropMask.Count(m => m == 0f), pr / 10, 3 * pr / 5);

        var expectedCtx = new float[n]; var expectedProbs = new float[pr];
        AttentionKernels.Forward(expectedCtx, expectedProbs, q, k, v, masked ? mask : [], dropMask, batch, seq, heads, headSize, new float[AttentionKernels.ScratchSize(seq)]);
        DeviceFixture.Close(expectedProbs, DeviceFixture.Download(probs, pr), 1e-5f, "probabilities");
        DeviceFixture.Close(expectedCtx, DeviceFixture.Download(ctx, n), 1e-5f, "context");

        var gq = new float[n]; var gk = new float[n]; var gv = new float[n];
        AttentionKernels.Backward(gq, gk, gv, dctx, expectedProbs, q, k, v, dropMask, batch, seq, heads, headSize, new float[AttentionKernels.ScratchSize(seq)], accumulate: false);
        using var gctx = f.Upload(dctx);
        using var oq = f.Upload(DeviceFixture.Random((int)n, 9)); using var ok = f.Device.Allocate(n); using var ov = f.Device.Allocate(n); // overwritten, not added to
        using var scratch = f.Device.Allocate(GpuKernels.AttentionScratch(batch, heads, seq));
        K.AttentionBackward(oq.View, ok.View, ov.View, gctx.View, probs.View, drop.View, dq.View, dk.View, dv.View, scratch.View, batch, seq, heads, headSize, dropout ? 0.3f : 0f);
        DeviceFixture.Close(gq, DeviceFixture.Download(oq, n), 1e-5f, "dq");
        DeviceFixture.Close(gk, DeviceFixture.Download(ok, n), 1e-5f, "dk");
        DeviceFixture.Close(gv, DeviceFixture.Download(ov, n), 1e-5f, "dv");
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
    }

    [Theory]
    [InlineData(2, 7, 5, 3, 2)]
    [InlineData(3, 4, 4, 1, 1)]
    [InlineData(1, 5, 9, 5, 4)]
    public void AdaptiveAvgPool2d_matches_the_CPU_pooling_with_uneven_bins(int planes, int h, int w, int oh, int ow)
    {
        var x = DeviceFixture.Random(planes * h * w, 16);
        var y = new float[planes * oh * ow];
        PoolingKernels.AdaptiveAvgPool2dForward(y, x, planes, h, w, oh, ow);
        var dy = DeviceFixture.Random(y.Length, 17);
        var dx = DeviceFixture.Random(x.Length, 18);
        var dxGpu = (float[])dx.Clone();
        PoolingKernels.AdaptiveAvgPool2dBackward(dx, dy, planes, h, w, oh, ow);
        using var X = f.Upload(x); using var Y = f.Device.Allocate(y.Length); using var DY = f.Upload(dy); using var DX = f.Upload(dxGpu);
        K.AdaptiveAvgPool2dForward(Y.View, X.View, planes, h, w, oh, ow);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        K.AdaptiveAvgPool2dBackward(DX.View, DY.View, planes, h, w, oh, ow);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, "dx");
    }

    [Theory]
    [InlineData(1, 1, 0f)]
    [InlineData(7, 10, 0f)]
    [InlineData(17, 3, 0.1f)]
    public void Cross_entropy_matches_the_CPU_loss_and_gradient(int rows, int classes, float smoothing)
    {
        var logits = DeviceFixture.Random(rows * classes, 12, 4f);
        var labels = Enumerable.Range(0, rows).Select(r => (r * 7) % classes).ToArray();
        var probs = new float[logits.Length];
        float loss = CrossEntropyKernels.Forward(probs, logits, labels, rows, classes, smoothing);
        var grad = new float[logits.Length];
        CrossEntropyKernels.Backward(grad, probs, labels, rows, classes, 1f / rows, smoothing);

        using var L = f.Upload(logits); using var T = f.Upload(labels); using var P = f.Device.Allocate(logits.Length);
        using var R = f.Device.Allocate(rows); using var G = f.Upload(new float[logits.Length]);
        K.CrossEntropyForward(R.View, P.View, L.View, T.View, rows, classes, smoothing);
        Assert.Equal(loss, DeviceFixture.Download(R, rows).Sum() / rows, 1e-5f);
        DeviceFixture.Close(probs, DeviceFixture.Download(P, probs.Length), 1e-5f, "probs");
        K.CrossEntropyBackward(G.View, P.View, T.View, rows, classes, 1f / rows, smoothing);
        DeviceFixture.Close(grad, DeviceFixture.Download(G, grad.Length), 1e-5f, "grad");
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
