using Compiled.Nets.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>
/// The kernels whose launch a GPU shapes — the tiled GEMMs and the kernels that give each row a group of threads
/// (layer norm, softmax, attention's softmax, the losses) — against the CPU runtime's kernels, twice: on the CPU
/// accelerator (groups of 16, warps of 4), and on the CPU accelerator simulating an NVIDIA GPU with every launch shaped
/// as on CUDA (16×16 GEMM tiles of 256 threads, warps of 32, rows of up to 128 threads). The second is the CUDA path's
/// group sizes, shared memory, shuffles and barriers, run without a GPU.
/// </summary>
public abstract class GroupedKernelTests(DeviceFixture f)
{
    private GpuKernels K => f.Device.Kernels;

    /// <summary>On ILGPU's CPU accelerator as the other tests use it.</summary>
    public sealed class OnCpuAccelerator(DeviceFixture f) : GroupedKernelTests(f), IClassFixture<DeviceFixture>;

    /// <summary>On the simulated NVIDIA GPU, launched as on CUDA.</summary>
    public sealed class CudaShaped(CudaShapedFixture f) : GroupedKernelTests(f), IClassFixture<CudaShapedFixture>;

    [Fact]
    public void The_device_launches_as_expected()
    {
        if (f.Device.IsCuda)
        {
            // On a GPU (COMPILED_NETS_TEST_DEVICE=cuda): warps of 32, and cuBLAS where it loads, else the tiled kernel.
            Assert.Equal(32, f.Device.Accelerator.WarpSize);
            Assert.True(f.Device.GemmBackend.StartsWith("cuBLAS", StringComparison.Ordinal) || f.Device.GemmBackend.StartsWith("ILGPU tiled kernel", StringComparison.Ordinal), f.Device.GemmBackend);
            return;
        }
        bool cudaShaped = f.Device.LaunchesLikeCuda;
        Assert.Equal(cudaShaped ? 32 : 4, f.Device.Accelerator.WarpSize);
        Assert.Equal(cudaShaped ? "ILGPU tiled kernel (not a CUDA device)" : "one thread per output (CPU accelerator)", f.Device.GemmBackend);
    }

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
    [InlineData(3, 7)]
    [InlineData(5, 65)]
    [InlineData(2, 768)]
    [InlineData(70, 33)] // more rows than a column sum has slices, features past a warp
    public void Layer_norm_forward_and_backward_match_the_CPU_kernels(int rows, int features)
    {
        // An offset far from zero: the two-pass variance must not cancel.
        var x = DeviceFixture.Random(rows * features, 21, 3f).Select(v => v + 5f).ToArray();
        var gamma = DeviceFixture.Random(features, 22); var beta = DeviceFixture.Random(features, 23);
        var dy = DeviceFixture.Random(rows * features, 24);
        var dxStart = DeviceFixture.Random(rows * features, 25); var dgStart = DeviceFixture.Random(features, 26); var dbStart = DeviceFixture.Random(features, 27);
        var y = new float[x.Length]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNormKernels.Forward(y, mean, rstd, x, gamma, beta, rows, features, 1e-5f);
        var dx = (float[])dxStart.Clone(); var dg = (float[])dgStart.Clone(); var db = (float[])dbStart.Clone();
        LayerNormKernels.Backward(dx, dg, db, dy, x, mean, rstd, gamma, rows, features);

        using var X = f.Upload(x); using var G = f.Upload(gamma); using var B = f.Upload(beta); using var DY = f.Upload(dy);
        using var Y = f.Device.Allocate(x.Length); using var M = f.Device.Allocate(rows); using var R = f.Device.Allocate(rows);
        K.LayerNormForward(Y.View, M.View, R.View, X.View, G.View, B.View, rows, features, 1e-5f);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        DeviceFixture.Close(mean, DeviceFixture.Download(M, rows), 1e-5f, "mean");
        DeviceFixture.Close(rstd, DeviceFixture.Download(R, rows), 1e-5f, "rstd");
        using var DX = f.Upload(dxStart); using var DG = f.Upload(dgStart); using var DB = f.Upload(dbStart);
        K.LayerNormBackward(DX.View, DG.View, DB.View, DY.View, X.View, M.View, R.View, G.View, rows, features);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, "dx");
        DeviceFixture.Close(dg, DeviceFixture.Download(DG, features), 1e-5f, "dgamma");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, features), 1e-5f, "dbeta");

        // γ or β frozen (an empty view): the other's gradient is the same and nothing else is written, the output
        // gradient included; both frozen with no input gradient wanted, nothing is launched.
        foreach (var (wantGamma, wantBeta) in new[] { (false, true), (true, false), (false, false) })
        {
            using var DG2 = f.Upload(dgStart); using var DB2 = f.Upload(dbStart); using var DX2 = f.Upload(dxStart);
            long launches = f.Device.LaunchCount;
            K.LayerNormBackward(wantBeta ? DX2.View : default, wantGamma ? DG2.View : default, wantBeta ? DB2.View : default, DY.View, X.View, M.View, R.View, G.View, rows, features);
            Assert.Equal((wantBeta ? 1 : 0) + (wantGamma || wantBeta ? 1 : 0), f.Device.LaunchCount - launches);
            Assert.Equal(dy, DeviceFixture.Download(DY, dy.Length));
            DeviceFixture.Close(wantBeta ? dx : dxStart, DeviceFixture.Download(DX2, dx.Length), 1e-5f, "dx");
            DeviceFixture.Close(wantGamma ? dg : dgStart, DeviceFixture.Download(DG2, features), 1e-5f, $"dgamma, γ {(wantGamma ? "trained" : "frozen")}");
            DeviceFixture.Close(wantBeta ? db : dbStart, DeviceFixture.Download(DB2, features), 1e-5f, $"dbeta, β {(wantBeta ? "trained" : "frozen")}");
        }
    }

    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 7, 1)]    // only the first operand's gradient (the second is the network's input)
    [InlineData(5, 129, 2)]  // only the second's
    [InlineData(2, 300, 3)]  // x + x: both gradients into one buffer
    public void Layer_norm_of_a_residual_sum_matches_the_CPU_add_then_norm(int rows, int features, int operands)
    {
        // The CPU: the sum, its layer norm, then the norm's input gradient added to each operand's. The device: one launch
        // forward (the sum kept for backward), the norm's gradient added to both operands in its own pass.
        int n = rows * features;
        bool same = operands == 3, wantA = operands != 2, wantB = operands != 1;
        var a = DeviceFixture.Random(n, 70, 3f).Select(v => v + 5f).ToArray();
        var b = same ? a : DeviceFixture.Random(n, 71);
        var gamma = DeviceFixture.Random(features, 72); var beta = DeviceFixture.Random(features, 73); var dy = DeviceFixture.Random(n, 74);
        var sum = a.Zip(b, (p, q) => p + q).ToArray();
        var y = new float[n]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNormKernels.Forward(y, mean, rstd, sum, gamma, beta, rows, features, 1e-5f);
        var dx = new float[n]; var dg = DeviceFixture.Random(features, 75); var dbeta = DeviceFixture.Random(features, 76);
        var dgStart = (float[])dg.Clone(); var dbetaStart = (float[])dbeta.Clone();
        LayerNormKernels.Backward(dx, dg, dbeta, dy, sum, mean, rstd, gamma, rows, features);
        var daStart = DeviceFixture.Random(n, 77); var dbStart = same ? daStart : DeviceFixture.Random(n, 78); // added onto
        var da = daStart.Select((v, i) => wantA ? v + dx[i] * (same ? 2 : 1) : v).ToArray();
        var db = dbStart.Select((v, i) => wantB && !same ? v + dx[i] : v).ToArray();

        using var A = f.Upload(a); using var B = f.Upload(b); using var G = f.Upload(gamma); using var BE = f.Upload(beta); using var DY = f.Upload(dy);
        using var S = f.Device.Allocate(n); using var Y = f.Device.Allocate(n); using var M = f.Device.Allocate(rows); using var R = f.Device.Allocate(rows);
        long before = f.Device.LaunchCount;
        K.LayerNormOfSumForward(Y.View, M.View, R.View, S.View, A.View, same ? A.View : B.View, G.View, BE.View, rows, features, 1e-5f);
        Assert.Equal(1, f.Device.LaunchCount - before);
        DeviceFixture.Close(sum, DeviceFixture.Download(S, n), 1e-6f, "sum");
        DeviceFixture.Close(y, DeviceFixture.Download(Y, n), 1e-5f, "y");
        DeviceFixture.Close(rstd, DeviceFixture.Download(R, rows), 1e-5f, "rstd");
        using var DA = f.Upload(daStart); using var DB = f.Upload(dbStart); using var DG = f.Upload(dgStart); using var DBE = f.Upload(dbetaStart);
        var dbView = same ? DA.View : DB.View;
        before = f.Device.LaunchCount;
        K.LayerNormOfSumBackward(wantA ? DA.View : default, wantB ? dbView : default, DG.View, DBE.View, DY.View, S.View, M.View, R.View, G.View, rows, features);
        Assert.Equal(2, f.Device.LaunchCount - before);
        DeviceFixture.Close(da, DeviceFixture.Download(DA, n), 1e-5f, "da");
        if (!same) DeviceFixture.Close(db, DeviceFixture.Download(DB, n), 1e-5f, "db");
        DeviceFixture.Close(dg, DeviceFixture.Download(DG, features), 1e-5f, "dgamma");
        DeviceFixture.Close(dbeta, DeviceFixture.Download(DBE, features), 1e-5f, "dbeta");
    }

    [Theory]
    [InlineData(1, 1, true, 0f, true)]
    [InlineData(3, 7, true, 0.1f, true)]
    [InlineData(5, 129, false, 0.5f, true)] // no bias
    [InlineData(70, 33, true, 0.3f, false)] // the residual's gradient not wanted (the network's input)
    public void Layer_norm_of_a_biased_dropped_branch_matches_the_CPU_chain_add_then_norm(int rows, int features, bool biased, float p, bool wantResidual)
    {
        // The CPU: the Linear's raw output plus its bias, times the chain's dropout factors (Philox drawn on the host under
        // the same key, stream and counters), plus the residual, then the norm; backward the norm's input gradient to the
        // residual's, times the factors to the raw output's, whose column sums are the bias's gradient. The device: one
        // launch forward, two backward.
        int n = rows * features;
        const ulong key = 0x5EED_0000_1234_ABCDUL;
        const int stream = 7;
        float keep = (float)(1.0 / (1.0 - p));
        var factor = Enumerable.Range(0, n).Select(i => p > 0 ? (Philox.Uniform(key, i, stream) < p ? 0f : keep) : 1f).ToArray();
        if (n > 100) Assert.Contains(0f, factor);
        var raw = DeviceFixture.Random(n, 80); var bias = DeviceFixture.Random(features, 81);
        var residual = DeviceFixture.Random(n, 82, 3f).Select(v => v + 5f).ToArray();
        var gamma = DeviceFixture.Random(features, 83); var beta = DeviceFixture.Random(features, 84); var dy = DeviceFixture.Random(n, 85);
        var sum = Enumerable.Range(0, n).Select(i => (raw[i] + (biased ? bias[i % features] : 0f)) * factor[i] + residual[i]).ToArray();
        var y = new float[n]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNormKernels.Forward(y, mean, rstd, sum, gamma, beta, rows, features, 1e-5f);
        var dsum = new float[n]; var dgStart = DeviceFixture.Random(features, 86); var dbetaStart = DeviceFixture.Random(features, 87);
        var dg = (float[])dgStart.Clone(); var dbeta = (float[])dbetaStart.Clone();
        LayerNormKernels.Backward(dsum, dg, dbeta, dy, sum, mean, rstd, gamma, rows, features);
        var dRaw = dsum.Select((g, i) => g * factor[i]).ToArray();
        var dResStart = DeviceFixture.Random(n, 88); var dBiasStart = DeviceFixture.Random(features, 89);
        var dRes = dResStart.Select((v, i) => v + dsum[i]).ToArray();
        var dBias = dBiasStart.Select((v, j) => v + Enumerable.Range(0, rows).Sum(r => dRaw[r * features + j])).ToArray();

        using var RAW = f.Upload(raw); using var BI = f.Upload(bias); using var RES = f.Upload(residual); using var G = f.Upload(gamma); using var BE = f.Upload(beta);
        using var S = f.Device.Allocate(n); using var Y = f.Device.Allocate(n); using var M = f.Device.Allocate(rows); using var R = f.Device.Allocate(rows);
        long before = f.Device.LaunchCount;
        K.LayerNormOfBranchForward(Y.View, M.View, R.View, S.View, RAW.View, biased ? BI.View : default, RES.View, G.View, BE.View, rows, features, 1e-5f, p, key, stream);
        Assert.Equal(1, f.Device.LaunchCount - before);
        DeviceFixture.Close(sum, DeviceFixture.Download(S, n), 1e-6f, "sum");
        DeviceFixture.Close(y, DeviceFixture.Download(Y, n), 1e-5f, "y");
        DeviceFixture.Close(rstd, DeviceFixture.Download(R, rows), 1e-5f, "rstd");

        using var DY = f.Upload(dy); using var DRAW = f.Device.Allocate(n); using var DRES = f.Upload(dResStart);
        using var DG = f.Upload(dgStart); using var DBE = f.Upload(dbetaStart); using var DBI = f.Upload(dBiasStart);
        DRAW.View.MemSetToZero();
        before = f.Device.LaunchCount;
        K.LayerNormOfBranchBackward(DRAW.View, wantResidual ? DRES.View : default, DG.View, DBE.View, biased ? DBI.View : default, DY.View, S.View, M.View, R.View, G.View, rows, features, p, key, stream);
        Assert.Equal(2, f.Device.LaunchCount - before);
        DeviceFixture.Close(dRaw, DeviceFixture.Download(DRAW, n), 1e-5f, "dRaw");
        DeviceFixture.Close(wantResidual ? dRes : dResStart, DeviceFixture.Download(DRES, n), 1e-5f, "dResidual");
        DeviceFixture.Close(dg, DeviceFixture.Download(DG, features), 1e-5f, "dgamma");
        DeviceFixture.Close(dbeta, DeviceFixture.Download(DBE, features), 1e-5f, "dbeta");
        DeviceFixture.Close(biased ? dBias : dBiasStart, DeviceFixture.Download(DBI, features), 1e-4f, "dBias");
        Assert.Equal(dy, DeviceFixture.Download(DY, n));

        // The bias's gradient is summed from the raw output's: asking for it without that is an error.
        Assert.Throws<ArgumentException>(() => K.LayerNormOfBranchBackward(default, DRES.View, DG.View, DBE.View, DBI.View, DY.View, S.View, M.View, R.View, G.View, rows, features, p, key, stream));
    }

    [Fact]
    public void High_matmul_precision_rounds_cuBLAS_products_to_TF32_and_nothing_else()
    {
        // float32 by default; with High, cuBLAS (on a GPU) rounds the inputs to TF32, about 1e-3 relative on a
        // 256-long dot product, while ILGPU's own GEMMs never change; back at Highest the float32 result returns bit for bit.
        const int m = 256, n = 256, k = 256;
        var a = DeviceFixture.Random(m * k, 90); var b = DeviceFixture.Random(k * n, 91);
        var expected = new float[m * n];
        Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        using var A = f.Upload(a); using var B = f.Upload(b); using var C = f.Device.Allocate(m * n);
        float[] Product()
        {
            K.Gemm(false, false, m, n, k, 1f, A.View, k, B.View, n, 0f, C.View, n);
            return DeviceFixture.Download(C, m * n);
        }
        var highest = Product();
        DeviceFixture.Close(expected, highest, 1e-5f, "float32");
        Assert.Equal(MatmulPrecision.Highest, f.Device.MatmulPrecision);
        bool cuBlas = f.Device.GemmBackend.StartsWith("cuBLAS", StringComparison.Ordinal);
        f.Device.MatmulPrecision = MatmulPrecision.High;
        try
        {
            var high = Product();
            Assert.Equal(cuBlas, f.Device.GemmBackend.Contains("TF32", StringComparison.Ordinal));
            if (cuBlas)
            {
                DeviceFixture.Close(expected, high, 2e-2f, "TF32");
                Assert.NotEqual(highest, high); // a 256³ product in TF32 mode runs on tensor cores
            }
            else Assert.Equal(highest, high);
        }
        finally { f.Device.MatmulPrecision = MatmulPrecision.Highest; }
        Assert.Equal(highest, Product());
        Assert.Throws<ArgumentOutOfRangeException>(() => f.Device.MatmulPrecision = (MatmulPrecision)2);
    }

    [Theory]
    [InlineData(1, 1, 1, 1, true)]
    [InlineData(3, 7, 5, 17, true)]   // spacings with gaps, as the parameter store's alignment leaves them
    [InlineData(2, 65, 9, 7, false)]  // no input gradient (the input is the network's data)
    [InlineData(3, 20, 16, 16, true)]
    public void Projections_of_one_input_match_a_CPU_Linear_each(int count, int rows, int inFeatures, int outFeatures, bool withDx)
    {
        // Weights and biases lie at spacings beyond their sizes, their gaps holding values no product may read or write.
        long w = (long)inFeatures * outFeatures, weightSpacing = w + 3, biasSpacing = outFeatures + 5;
        var weights = DeviceFixture.Random((int)((count - 1) * weightSpacing + w), 80);
        var biases = DeviceFixture.Random((int)((count - 1) * biasSpacing + outFeatures), 81);
        var x = DeviceFixture.Random(rows * inFeatures, 82);
        var dy = DeviceFixture.Random(count * rows * outFeatures, 83);
        var dwStart = DeviceFixture.Random(weights.Length, 84); var dbStart = DeviceFixture.Random(biases.Length, 85); var dxStart = DeviceFixture.Random(x.Length, 86);
        var y = new float[dy.Length];
        var dw = (float[])dwStart.Clone(); var db = (float[])dbStart.Clone(); var dx = (float[])dxStart.Clone();
        int block = rows * outFeatures;
        for (int p = 0; p < count; p++)
        {
            var wp = weights.AsSpan((int)(p * weightSpacing), (int)w);
            LinearKernels.ForwardBias(y.AsSpan(p * block, block), x, wp, biases.AsSpan((int)(p * biasSpacing), outFeatures), rows, inFeatures, outFeatures);
            LinearKernels.Backward(withDx ? dx : default, dw.AsSpan((int)(p * weightSpacing), (int)w), dy.AsSpan(p * block, block), x, wp, rows, inFeatures, outFeatures);
            LinearKernels.BiasBackward(db.AsSpan((int)(p * biasSpacing), outFeatures), dy.AsSpan(p * block, block), rows, outFeatures);
        }

        using var W = f.Upload(weights); using var B = f.Upload(biases); using var X = f.Upload(x); using var DY = f.Upload(dy);
        using var Y = f.Device.Allocate(y.Length);
        long before = f.Device.LaunchCount;
        K.ProjectionsForward(Y.View, X.View, W.View, weightSpacing, B.View, biasSpacing, count, rows, inFeatures, outFeatures);
        Assert.Equal(2, f.Device.LaunchCount - before);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        using var DW = f.Upload(dwStart); using var DB = f.Upload(dbStart); using var DX = f.Upload(dxStart);
        before = f.Device.LaunchCount;
        K.ProjectionsBackward(withDx ? DX.View : default, DW.View, DB.View, DY.View, X.View, W.View, weightSpacing, biasSpacing, count, rows, inFeatures, outFeatures);
        Assert.Equal(2 + (withDx ? count : 0), f.Device.LaunchCount - before);
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, dw.Length), 1e-5f, "dW (gaps unchanged)");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, db.Length), 1e-5f, "db (gaps unchanged)");
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, withDx ? "dx" : "dx untouched");
    }

    [Fact]
    public void Projections_whose_tensors_overlap_are_refused()
    {
        using var W = f.Device.Allocate(64); using var B = f.Device.Allocate(16); using var X = f.Device.Allocate(8); using var Y = f.Device.Allocate(64);
        var e = Assert.Throws<ArgumentException>(() => K.ProjectionsForward(Y.View, X.View, W.View, 3, B.View, 4, 3, 2, 2, 2));
        Assert.Contains("overlap", e.Message);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 10)]
    [InlineData(4, 129)]
    [InlineData(2, 1030)]
    public void Softmax_and_log_softmax_match_the_CPU_kernels_forward_and_backward(int rows, int cols)
    {
        var x = DeviceFixture.Random(rows * cols, 31, 6f);
        var dy = DeviceFixture.Random(rows * cols, 32);
        var dxStart = DeviceFixture.Random(rows * cols, 33);
        using var X = f.Upload(x); using var DY = f.Upload(dy); using var Y = f.Device.Allocate(x.Length);
        foreach (bool log in new[] { false, true })
        {
            var y = new float[x.Length]; var dx = (float[])dxStart.Clone();
            if (log) { LogSoftmaxKernels.Forward(y, x, rows, cols); LogSoftmaxKernels.Backward(dx, dy, y, rows, cols); }
            else { SoftmaxKernels.Forward(y, x, rows, cols); SoftmaxKernels.Backward(dx, dy, y, rows, cols); }
            K.SoftmaxForward(Y.View, X.View, rows, cols, log);
            DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, log ? "log-softmax" : "softmax");
            using var DX = f.Upload(dxStart);
            K.SoftmaxBackward(DX.View, DY.View, Y.View, rows, cols, log);
            DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, log ? "log-softmax dx" : "softmax dx");
        }
    }

    [Theory]
    [InlineData(1, 1, 0f, false)]
    [InlineData(7, 10, 0f, true)]
    [InlineData(17, 3, 0.1f, false)]
    [InlineData(5, 300, 0.2f, true)]
    public void Weighted_cross_entropy_and_NLL_with_an_ignored_label_match_the_CPU(int rows, int classes, float smoothing, bool ignoreSome)
    {
        const int ignore = -100;
        var logits = DeviceFixture.Random(rows * classes, 41, 4f);
        var labels = Enumerable.Range(0, rows).Select(r => ignoreSome && r % 3 == 1 ? ignore : (r * 7) % classes).ToArray();
        var weights = Enumerable.Range(0, classes).Select(k => 0.5f + k % 4 * 0.25f).ToArray();
        float total = labels.Where(l => l != ignore).Sum(l => weights[l]);
        using var L = f.Upload(logits); using var T = f.Upload(labels); using var W = f.Upload(weights);
        using var P = f.Device.Allocate(logits.Length); using var R = f.Device.Allocate(rows);

        var probs = new float[logits.Length];
        float loss = CrossEntropyKernels.Forward(probs, logits, labels, rows, classes, smoothing, weights, ignore);
        var grad = new float[logits.Length];
        CrossEntropyKernels.Backward(grad, probs, labels, rows, classes, smoothing, weights, ignore);
        K.WeightedClassLossForward(false, R.View, P.View, L.View, T.View, W.View, rows, classes, smoothing, ignore);
        Assert.Equal(loss, DeviceFixture.Download(R, rows).Sum() / total, 1e-5f);
        DeviceFixture.Close(probs, DeviceFixture.Download(P, probs.Length), 1e-5f, "probs");
        using var G = f.Upload(new float[logits.Length]);
        K.WeightedClassLossBackward(false, G.View, P.View, T.View, W.View, rows, classes, 1f / total, smoothing, ignore);
        DeviceFixture.Close(grad, DeviceFixture.Download(G, grad.Length), 1e-5f, "cross-entropy grad");

        // NLL reads the logits as log-probabilities.
        float nll = NllKernels.Forward(logits, labels, rows, classes, weights, ignore);
        var nllGrad = new float[logits.Length];
        NllKernels.Backward(nllGrad, labels, rows, classes, weights, ignore);
        K.WeightedClassLossForward(true, R.View, P.View, L.View, T.View, W.View, rows, classes, 0f, ignore);
        Assert.Equal(nll, DeviceFixture.Download(R, rows).Sum() / total, 1e-5f);
        using var NG = f.Upload(new float[logits.Length]);
        K.WeightedClassLossBackward(true, NG.View, P.View, T.View, W.View, rows, classes, 1f / total, 0f, ignore);
        DeviceFixture.Close(nllGrad, DeviceFixture.Download(NG, nllGrad.Length), 1e-5f, "NLL grad");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(2, 700)]
    public void Float_target_losses_sum_each_row(int rows, int cols)
    {
        var pred = DeviceFixture.Random(rows * cols, 51, 2f);
        var target = DeviceFixture.Random(rows * cols, 52).Select(Math.Abs).ToArray(); // KL's targets are probabilities' kind: ≥ 0
        using var P = f.Upload(pred); using var T = f.Upload(target); using var R = f.Device.Allocate(rows);
        foreach (var loss in new[] { DeviceLoss.Mse, DeviceLoss.L1, DeviceLoss.SmoothL1, DeviceLoss.BceWithLogits, DeviceLoss.KlDiv })
        {
            K.FloatLossForward(loss, R.View, P.View, T.View, rows, cols, 0.5f);
            var got = DeviceFixture.Download(R, rows);
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> p = pred.AsSpan(r * cols, cols), t = target.AsSpan(r * cols, cols);
                // The CPU kernels' means times the row's length: its sum.
                float expected = cols * loss switch
                {
                    DeviceLoss.Mse => MseKernels.Forward(p, t, cols),
                    DeviceLoss.L1 => L1Kernels.Forward(p, t, cols),
                    DeviceLoss.SmoothL1 => SmoothL1Kernels.Forward(p, t, cols, 0.5f),
                    DeviceLoss.BceWithLogits => BceWithLogitsKernels.Forward(p, t, cols),
                    _ => KlDivKernels.Forward(p, t, cols, cols),
                };
                Assert.True(Math.Abs(expected - got[r]) <= 1e-5f * (1 + Math.Abs(expected)), $"{loss} row {r}: expected {expected}, got {got[r]}");
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 5, 5, 3, 1, 1)]
    [InlineData(3, 4, 2, 9, 7, 3, 1, 1)]
    [InlineData(2, 3, 1, 11, 10, 3, 2, 0)]
    public void Depthwise_gradients_and_channel_sums_match_the_CPU(int batch, int channels, int perChannel, int h, int w, int k, int stride, int pad)
    {
        var group = new Conv2dGeometry(batch, 1, h, w, perChannel, k, k, stride, stride, pad, pad);
        int outs = channels * perChannel;
        long xLen = (long)batch * channels * h * w, yLen = (long)batch * outs * group.OutHeight * group.OutWidth, wLen = (long)outs * k * k;
        var x = DeviceFixture.Random((int)xLen, 61); var wt = DeviceFixture.Random((int)wLen, 62); var dy = DeviceFixture.Random((int)yLen, 63);
        var dxStart = DeviceFixture.Random((int)xLen, 64); var dwStart = DeviceFixture.Random((int)wLen, 65); var dbStart = DeviceFixture.Random(outs, 66);
        var dx = (float[])dxStart.Clone(); var dw = (float[])dwStart.Clone();
        Conv2dKernels.BackwardGrouped(dx, dw, dy, x, wt, group, channels, new float[Conv2dKernels.GroupedScratchSize(group, channels)]);
        var db = (float[])dbStart.Clone();
        int plane = group.OutHeight * group.OutWidth;
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < outs; o++)
                db[o] += (float)Enumerable.Range(0, plane).Sum(q => (double)dy[((long)b * outs + o) * plane + q]);

        using var X = f.Upload(x); using var Wt = f.Upload(wt); using var DY = f.Upload(dy);
        using var DX = f.Upload(dxStart); using var DW = f.Upload(dwStart); using var DB = f.Upload(dbStart);
        K.DepthwiseBackward(DX.View, DW.View, DB.View, DY.View, X.View, Wt.View, group, channels);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-5f, "dx");
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, dw.Length), 1e-5f, "dw");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, db.Length), 1e-5f, "db");
    }

    [Theory]
    [InlineData(1, 2, 1, 1)]
    [InlineData(3, 6, 7, 3)]
    [InlineData(2, 8, 65, 2)]
    public void Group_norm_forward_and_backward_match_the_CPU_kernels(int batch, int channels, int positions, int groups)
    {
        long n = (long)batch * channels * positions;
        var x = DeviceFixture.Random((int)n, 71, 2f).Select(v => v + 3f).ToArray();
        var wt = DeviceFixture.Random(channels, 72); var bias = DeviceFixture.Random(channels, 73); var dy = DeviceFixture.Random((int)n, 74);
        var dxStart = DeviceFixture.Random((int)n, 75); var dwStart = DeviceFixture.Random(channels, 76); var dbStart = DeviceFixture.Random(channels, 77);
        var y = new float[n]; var mean = new float[batch * groups]; var rstd = new float[batch * groups];
        GroupNormKernels.Forward(y, mean, rstd, x, wt, bias, batch, channels, positions, groups, 1e-5f);
        var dx = (float[])dxStart.Clone(); var dw = (float[])dwStart.Clone(); var db = (float[])dbStart.Clone();
        GroupNormKernels.Backward(dx, dw, db, dy, x, mean, rstd, wt, batch, channels, positions, groups);

        using var X = f.Upload(x); using var Wt = f.Upload(wt); using var B = f.Upload(bias); using var DY = f.Upload(dy);
        using var Y = f.Device.Allocate(n); using var M = f.Device.Allocate(batch * groups); using var R = f.Device.Allocate(batch * groups);
        K.GroupNormForward(Y.View, M.View, R.View, X.View, Wt.View, B.View, batch, channels, positions, groups, 1e-5f);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, n), 1e-5f, "y");
        DeviceFixture.Close(rstd, DeviceFixture.Download(R, rstd.Length), 1e-4f, "rstd");
        using var DX = f.Upload(dxStart); using var DW = f.Upload(dwStart); using var DB = f.Upload(dbStart); using var S = f.Device.Allocate(2 * batch * groups);
        K.GroupNormBackward(DX.View, DW.View, DB.View, DY.View, X.View, M.View, R.View, Wt.View, S.View, batch, channels, positions, groups);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, n), 1e-4f, "dx");
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, channels), 1e-5f, "dw");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, channels), 1e-5f, "db");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(6, 5)]
    [InlineData(4, 300)]
    public void Cosine_embedding_loss_matches_the_CPU_forward_and_backward(int pairs, int dim)
    {
        var a = DeviceFixture.Random(pairs * dim, 81); var b = DeviceFixture.Random(pairs * dim, 82);
        if (pairs > 1) Array.Copy(a, 0, b, dim, dim); // an identical pair: cos 1
        var y = Enumerable.Range(0, pairs).Select(i => i % 3 == 0 ? 1f : -1f).ToArray();
        float loss = CosineEmbeddingKernels.Forward(a, b, y, pairs, dim, 0.1f);
        var daStart = DeviceFixture.Random(pairs * dim, 83); var dbStart = DeviceFixture.Random(pairs * dim, 84);
        var da = (float[])daStart.Clone(); var db = (float[])dbStart.Clone();
        CosineEmbeddingKernels.Backward(da, db, a, b, y, pairs, dim, 0.1f, 0.5f);

        using var A = f.Upload(a); using var B = f.Upload(b); using var Y = f.Upload(y); using var R = f.Device.Allocate(pairs);
        K.CosineEmbeddingForward(R.View, A.View, B.View, Y.View, pairs, dim, 0.1f);
        Assert.Equal(loss, DeviceFixture.Download(R, pairs).Sum() / pairs, 1e-5f);
        using var DA = f.Upload(daStart); using var DB = f.Upload(dbStart);
        K.CosineEmbeddingBackward(DA.View, DB.View, A.View, B.View, Y.View, pairs, dim, 0.1f, 0.5f);
        DeviceFixture.Close(da, DeviceFixture.Download(DA, da.Length), 1e-5f, "da");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, db.Length), 1e-5f, "db");
    }

    [Theory]
    [InlineData(2, 7, 5, 3, 2)]
    [InlineData(3, 4, 4, 1, 1)]
    [InlineData(1, 5, 9, 5, 4)]
    [InlineData(3, 29, 31, 1, 1)] // global average pooling: a group per plane
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
    [InlineData(true, false, false, 1)]
    [InlineData(true, true, true, 17)]
    [InlineData(true, false, true, 40)] // more units than a warp: the state is staged by two warps
    [InlineData(false, false, true, 33)]
    [InlineData(false, true, false, 5)]
    public void Recurrent_layers_match_the_CPU_kernels_forward_and_backward(bool lstm, bool reverse, bool masked, int hidden)
    {
        const int batch = 3, seq = 5, input = 4, yOffset = 1;
        int g = lstm ? 4 : 3, gw = g * hidden, yWidth = hidden + 2, rows = batch * seq;
        float scale = 1f / MathF.Sqrt(hidden);
        var x = DeviceFixture.Random(rows * input, 20);
        var wIh = DeviceFixture.Random(gw * input, 21, scale); var wHh = DeviceFixture.Random(gw * hidden, 22, scale);
        var bIh = DeviceFixture.Random(gw, 23, scale); var bHh = DeviceFixture.Random(gw, 24, scale);
        int[] mask = masked ? [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0] : []; // a full sample, right padding, a hole
        var y = DeviceFixture.Random(rows * yWidth, 25); // the columns of the other direction stay as they are
        var yDevice = (float[])y.Clone();
        var gates = new float[rows * gw]; var states = new float[rows * hidden]; var extra = new float[rows * hidden];
        var carry = new float[RecurrentKernels.CarrySize(batch, hidden)];
        if (lstm) RecurrentKernels.LstmForward(y, yWidth, yOffset, gates, states, extra, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse);
        else RecurrentKernels.GruForward(y, yWidth, yOffset, gates, states, extra, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse, carry);

        using var X = f.Upload(x); using var WIh = f.Upload(wIh); using var WHh = f.Upload(wHh); using var BIh = f.Upload(bIh); using var BHh = f.Upload(bHh);
        using var M = f.Upload(masked ? mask : [0]); using var Y = f.Upload(yDevice);
        using var G = f.Device.Allocate(gates.Length); using var S = f.Device.Allocate(states.Length); using var E = f.Device.Allocate(extra.Length);
        using var Scratch = f.Device.Allocate(GpuKernels.RecurrentScratch(lstm, batch, seq, hidden));
        K.RecurrentForward(lstm, Y.View, yWidth, yOffset, G.View, S.View, E.View, X.View, WIh.View, WHh.View, BIh.View, BHh.View, M.View, masked, Scratch.View,
            batch, seq, input, hidden, reverse);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        DeviceFixture.Close(states, DeviceFixture.Download(S, states.Length), 1e-5f, "states");
        DeviceFixture.Close(extra, DeviceFixture.Download(E, extra.Length), 1e-5f, lstm ? "cells" : "hidden terms");
        DeviceFixture.Close(gates, DeviceFixture.Download(G, gates.Length), 1e-5f, "gates");

        // Backward adds to gradients that already hold values.
        var dy = DeviceFixture.Random(rows * yWidth, 26);
        var dx = DeviceFixture.Random(rows * input, 27); var dWih = DeviceFixture.Random(wIh.Length, 28); var dWhh = DeviceFixture.Random(wHh.Length, 29);
        var dBih = DeviceFixture.Random(gw, 30); var dBhh = DeviceFixture.Random(gw, 31);
        using var DY = f.Upload(dy); using var DX = f.Upload(dx); using var DWih = f.Upload(dWih); using var DWhh = f.Upload(dWhh);
        using var DBih = f.Upload(dBih); using var DBhh = f.Upload(dBhh); using var Carry = f.Device.Allocate((long)batch * GpuKernels.RecurrentCarry(hidden));
        carry = new float[RecurrentKernels.CarrySize(batch, hidden)];
        if (lstm) RecurrentKernels.LstmBackward(dx, dWih, dWhh, dBih, dBhh, dy, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, batch, seq, input, hidden, reverse, carry);
        else RecurrentKernels.GruBackward(dx, dWih, dWhh, dBih, dBhh, dy, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, batch, seq, input, hidden, reverse, carry);
        K.RecurrentBackward(lstm, DX.View, DWih.View, DWhh.View, DBih.View, DBhh.View, DY.View, yWidth, yOffset, G.View, S.View, E.View, X.View, WIh.View, WHh.View,
            M.View, masked, Carry.View, Scratch.View, batch, seq, input, hidden, reverse);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, dx.Length), 1e-4f, "dx");
        DeviceFixture.Close(dWih, DeviceFixture.Download(DWih, dWih.Length), 1e-4f, "dW_ih");
        DeviceFixture.Close(dWhh, DeviceFixture.Download(DWhh, dWhh.Length), 1e-4f, "dW_hh");
        DeviceFixture.Close(dBih, DeviceFixture.Download(DBih, dBih.Length), 1e-4f, "db_ih");
        DeviceFixture.Close(dBhh, DeviceFixture.Download(DBhh, dBhh.Length), 1e-4f, "db_hh");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(70, 33)]
    [InlineData(300, 70)]
    public void Column_row_and_square_sums_match_a_double_sum_and_repeat_bit_for_bit(int rows, int cols)
    {
        // Columns [2, 2 + cols) of rows cols + 3 wide; rows of cols values; the squares of the runs of a parameter walk
        // over the first rows · cols: a third that decays, then what follows it up to the half (a run of its own, as it
        // does not), then past a skipped (frozen) element the rest.
        int stride = cols + 3, n = rows * cols;
        var x = DeviceFixture.Random(rows * stride, 40);
        var start = DeviceFixture.Random(Math.Max(rows, cols), 41);
        var columns = Enumerable.Range(0, cols).Select(c => start[c] + (float)Enumerable.Range(0, rows).Sum(r => (double)x[r * stride + 2 + c])).ToArray();
        var rowSums = Enumerable.Range(0, rows).Select(r => start[r] + (float)Enumerable.Range(0, cols).Sum(c => (double)x[r * cols + c])).ToArray();
        using var runs = new ParameterRuns();
        runs.Begin();
        runs.Add(0, n / 3, decays: true);
        runs.Add(n / 3, n / 2 - n / 3, decays: false);
        if (n > n / 2 + 1) runs.Add(n / 2 + 1, n - n / 2 - 1, decays: false);
        runs.End(f.Device);
        Assert.Equal(n - (n > n / 2 ? 1 : 0), runs.Elements);
        double squares = 0.5 + x.Take(n).Where((_, i) => i != n / 2).Sum(v => (double)v * v);
        float[]? firstColumns = null, firstRows = null; float firstSquares = 0;
        for (int run = 0; run < 2; run++)
        {
            using var X = f.Upload(x); using var C = f.Upload(start[..cols]); using var R = f.Upload(start[..rows]);
            using var Q = f.Upload([0.5f, .. DeviceFixture.Random(GpuKernels.SquarePartials, 42)]); // partials start as garbage
            K.AddColumnSums(C.View, X.View, rows, cols, stride, 2);
            K.AddRowSums(R.View, X.View, rows, cols);
            K.AddSumOfSquares(Q.View, X.View, runs);
            var c = DeviceFixture.Download(C, cols); var r = DeviceFixture.Download(R, rows); float q = DeviceFixture.Download(Q, 1)[0];
            DeviceFixture.Close(columns, c, 1e-5f, "column sums");
            DeviceFixture.Close(rowSums, r, 1e-5f, "row sums");
            Assert.Equal(squares, q, 1e-5 * squares);
            if (run == 0) { firstColumns = c; firstRows = r; firstSquares = q; continue; }
            // A fixed order of additions: the same bits every time.
            Assert.Equal(firstColumns, c); Assert.Equal(firstRows, r); Assert.Equal(firstSquares, q);
        }
    }

    [Theory]
    [InlineData(3, 5, 7)]
    [InlineData(6, 3, 1)] // BatchNorm1d: one value per channel and sample
    [InlineData(4, 2, 65)]
    public void Batch_norm_training_matches_the_CPU_kernels(int batch, int channels, int spatial)
    {
        int n = batch * channels * spatial;
        var x = DeviceFixture.Random(n, 50, 2f).Select(v => v + 4f).ToArray(); // off zero: the two-pass variance must not cancel
        var gamma = DeviceFixture.Random(channels, 51); var beta = DeviceFixture.Random(channels, 52);
        var runMean = DeviceFixture.Random(channels, 53); var runVar = DeviceFixture.Random(channels, 54).Select(v => v + 2f).ToArray();
        var dy = DeviceFixture.Random(n, 55);
        var dxStart = DeviceFixture.Random(n, 56); var dgStart = DeviceFixture.Random(channels, 57); var dbStart = DeviceFixture.Random(channels, 58);
        var y = new float[n]; var mean = new float[channels]; var inv = new float[channels];
        var cpuMean = (float[])runMean.Clone(); var cpuVar = (float[])runVar.Clone();
        BatchNormKernels.ForwardTraining(y, mean, inv, cpuMean, cpuVar, x, gamma, beta, batch, channels, spatial, 1e-5f, 0.1f);
        var dx = (float[])dxStart.Clone(); var dg = (float[])dgStart.Clone(); var db = (float[])dbStart.Clone();
        BatchNormKernels.Backward(dx, dg, db, dy, x, mean, inv, gamma, batch, channels, spatial);

        using var X = f.Upload(x); using var G = f.Upload(gamma); using var B = f.Upload(beta); using var RM = f.Upload(runMean); using var RV = f.Upload(runVar);
        using var T = f.Upload(new float[] { 3f }); using var Y = f.Device.Allocate(n); using var S = f.Device.Allocate(GpuKernels.BatchNormState(channels));
        K.BatchNormForwardTraining(Y.View, X.View, G.View, B.View, RM.View, RV.View, T.View, S.View, batch, channels, spatial, 1e-5f, 0.1f);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, n), 1e-5f, "y");
        var state = DeviceFixture.Download(S, 2 * channels);
        DeviceFixture.Close(mean, state[..channels], 1e-5f, "saved mean");
        DeviceFixture.Close(inv, state[channels..], 1e-5f, "saved inverse deviation");
        DeviceFixture.Close(cpuMean, DeviceFixture.Download(RM, channels), 1e-5f, "running mean");
        DeviceFixture.Close(cpuVar, DeviceFixture.Download(RV, channels), 1e-5f, "running variance");
        Assert.Equal(4f, DeviceFixture.Download(T, 1)[0]);

        using var DY = f.Upload(dy); using var DX = f.Upload(dxStart); using var DG = f.Upload(dgStart); using var DB = f.Upload(dbStart);
        K.BatchNormBackward(DX.View, DG.View, DB.View, DY.View, X.View, G.View, S.View, batch, channels, spatial);
        DeviceFixture.Close(dx, DeviceFixture.Download(DX, n), 1e-4f, "dx");
        DeviceFixture.Close(dg, DeviceFixture.Download(DG, channels), 1e-5f, "dgamma");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, channels), 1e-5f, "dbeta");

        // γ or β frozen (an empty view): dx and the other's gradient are the same, and nothing else is written, the
        // output gradient included.
        foreach (var (wantGamma, wantBeta) in new[] { (false, true), (true, false), (false, false) })
        {
            using var DX2 = f.Upload(dxStart); using var DG2 = f.Upload(dgStart); using var DB2 = f.Upload(dbStart);
            K.BatchNormBackward(DX2.View, wantGamma ? DG2.View : default, wantBeta ? DB2.View : default, DY.View, X.View, G.View, S.View, batch, channels, spatial);
            Assert.Equal(dy, DeviceFixture.Download(DY, n));
            DeviceFixture.Close(dx, DeviceFixture.Download(DX2, n), 1e-4f, "dx");
            DeviceFixture.Close(wantGamma ? dg : dgStart, DeviceFixture.Download(DG2, channels), 1e-5f, $"dgamma, γ {(wantGamma ? "trained" : "frozen")}");
            DeviceFixture.Close(wantBeta ? db : dbStart, DeviceFixture.Download(DB2, channels), 1e-5f, $"dbeta, β {(wantBeta ? "trained" : "frozen")}");
        }
    }

    [Theory]
    [InlineData(true, 2, new[] { 3, 4, 5 }, new[] { 3, 1, 5 }, new[] { 4, 1 }, 1, 1)]
    [InlineData(false, 3, new[] { 2, 3 }, new[] { 2, 3 }, new[] { 3 }, 1, 1)]
    [InlineData(true, 6, new[] { 4 }, new[] { 4 }, new[] { 1 }, 3, 1)] // a sequence's rows: a once per sample of 3 rows
    [InlineData(false, 6, new[] { 2, 2 }, new[] { 1, 2 }, new[] { 2, 2 }, 1, 2)]
    public void Broadcast_gradients_sum_over_where_each_operand_was_broadcast(bool multiply, int batch, int[] outShape, int[] aShape, int[] bShape, int repeatA, int repeatB)
    {
        int per = outShape.Aggregate(1, (p, d) => p * d), sa = aShape.Aggregate(1, (p, d) => p * d), sb = bShape.Aggregate(1, (p, d) => p * d);
        var a = DeviceFixture.Random(batch / repeatA * sa, 60); var b = DeviceFixture.Random(batch / repeatB * sb, 61); var dy = DeviceFixture.Random(batch * per, 62);
        var daStart = DeviceFixture.Random(a.Length, 63); var dbStart = DeviceFixture.Random(b.Length, 64);
        // PyTorch's rule, element by element: an operand's dimensions align with the result's last ones; size 1 repeats.
        var da = daStart.Select(v => (double)v).ToArray(); var db = dbStart.Select(v => (double)v).ToArray();
        for (int o = 0; o < batch * per; o++)
        {
            int ia = o / per / repeatA * sa + Offset(o % per, outShape, aShape), ib = o / per / repeatB * sb + Offset(o % per, outShape, bShape);
            da[ia] += multiply ? dy[o] * (double)b[ib] : dy[o];
            db[ib] += multiply ? dy[o] * (double)a[ia] : -dy[o];
        }
        using var A = f.Upload(a); using var B = f.Upload(b); using var DY = f.Upload(dy); using var DA = f.Upload(daStart); using var DB = f.Upload(dbStart);
        var op = multiply ? BinaryOp.Multiply : BinaryOp.Subtract;
        K.BroadcastBackward(op, DA.View, DB.View, DY.View, A.View, B.View, batch, outShape, aShape, bShape, repeatA, repeatB);
        DeviceFixture.Close([.. da.Select(v => (float)v)], DeviceFixture.Download(DA, a.Length), 1e-5f, "da");
        DeviceFixture.Close([.. db.Select(v => (float)v)], DeviceFixture.Download(DB, b.Length), 1e-5f, "db");
        // One gradient alone leaves the other's buffer as it was.
        using var DB2 = f.Upload(dbStart);
        K.BroadcastBackward(op, default, DB2.View, DY.View, A.View, B.View, batch, outShape, aShape, bShape, repeatA, repeatB);
        DeviceFixture.Close([.. db.Select(v => (float)v)], DeviceFixture.Download(DB2, b.Length), 1e-5f, "db alone");

        static int Offset(int at, int[] outShape, int[] shape)
        {
            int offset = 0, stride = 1;
            for (int d = outShape.Length - 1; d >= 0; d--)
            {
                int coord = at % outShape[d], k = d - (outShape.Length - shape.Length);
                at /= outShape[d];
                if (k < 0) continue;
                if (shape[k] != 1) offset += coord * stride;
                stride *= shape[k];
            }
            return offset;
        }
    }

    [Fact]
    public void A_convolutions_bias_gradient_summed_as_its_output_gradient_moves_matches_the_CPU()
    {
        // A group per output channel moves dy to [O, B·P] and sums it: B·P = 297 exceeds a group's threads.
        var g = new Conv2dGeometry(3, 2, 9, 11, 5, 3, 3, 1, 1, 1, 1);
        var x = DeviceFixture.Random(g.Batch * g.InSize, 40); var w = DeviceFixture.Random(g.WeightSize, 41, 0.5f);
        var dy = DeviceFixture.Random(g.Batch * g.OutSize, 42);
        var dw = DeviceFixture.Random(g.WeightSize, 43); var db = DeviceFixture.Random(g.OutChannels, 44); // added onto
        var dwGpu = (float[])dw.Clone(); var dbGpu = (float[])db.Clone();
        Conv2dKernels.Backward(default, dw, dy, x, w, g, new float[Conv2dKernels.ScratchSize(g)]);
        int plane = g.OutHeight * g.OutWidth;
        for (int b = 0; b < g.Batch; b++)
            for (int o = 0; o < g.OutChannels; o++)
                for (int p = 0; p < plane; p++) db[o] += dy[(b * g.OutChannels + o) * plane + p];
        using var X = f.Upload(x); using var W = f.Upload(w); using var DY = f.Upload(dy);
        using var DW = f.Upload(dwGpu); using var DB = f.Upload(dbGpu); using var S = f.Device.Allocate(GpuKernels.Conv2dScratch(g));
        long before = f.Device.LaunchCount;
        K.Conv2dBackward(default, DW.View, DB.View, DY.View, X.View, W.View, g, S.View);
        Assert.Equal(3, f.Device.LaunchCount - before); // dy moved with the bias summed, the patches, dw's GEMM
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, dw.Length), 1e-5f, "dw");
        DeviceFixture.Close(db, DeviceFixture.Download(DB, db.Length), 1e-5f, "db");
    }

    [Theory]
    [InlineData(2, 3, 8, 8, 4, 3, 1, 1, 2, 2, 0, true, true, true)]    // the seed ConvNet's shape of unit
    [InlineData(1, 2, 7, 9, 5, 3, 1, 0, 2, 2, 0, false, true, true)]   // odd planes: the pool drops the last row and column
    [InlineData(3, 1, 6, 5, 2, 2, 1, 0, 3, 2, 1, true, false, true)]   // overlapping, padded windows
    [InlineData(1, 1, 4, 4, 1, 1, 1, 0, 2, 2, 0, false, false, false)] // no input gradient (the network's input)
    public void A_convolution_and_the_max_pool_reading_it_match_the_CPU_convolution_then_pool(int batch, int channels, int h, int w, int outChannels,
        int k, int stride, int pad, int window, int poolStride, int poolPad, bool bias, bool relu, bool inputGradient)
    {
        // The CPU: convolution, pool (argmax), ReLU; back through the ReLU and the pool onto the convolution's output
        // gradient, its channel sums (the bias gradient), then the convolution's backward. The device: three launches
        // forward, one into the convolution's gradient layout and its usual ones back.
        var g = new Conv2dGeometry(batch, channels, h, w, outChannels, k, k, stride, stride, pad, pad);
        var pg = new Pool2dGeometry(batch, outChannels, g.OutHeight, g.OutWidth, window, window, poolStride, poolStride, poolPad, poolPad);
        var x = DeviceFixture.Random(g.Batch * g.InSize, 60); var wt = DeviceFixture.Random(g.WeightSize, 61, 0.5f);
        var b = bias ? DeviceFixture.Random(outChannels, 62) : [];
        var conv = new float[g.Batch * g.OutSize];
        Conv2dKernels.Forward(conv, x, wt, b, g, new float[Conv2dKernels.ScratchSize(g)]);
        var pooled = new float[batch * pg.OutSize]; var arg = new int[pooled.Length];
        PoolingKernels.MaxPool2dForward(pooled, arg, conv, pg);
        var y = relu ? pooled.Select(Elementwise.Relu).ToArray() : pooled;
        if (relu) Assert.Contains(y, v => v == 0f);
        var dy = DeviceFixture.Random(y.Length, 63);
        var dConv = new float[conv.Length];
        PoolingKernels.MaxPool2dBackward(dConv, relu ? dy.Select((d, i) => Elementwise.ReluGrad(y[i], d)).ToArray() : dy, arg, pg);
        var dx = DeviceFixture.Random(x.Length, 64); var dw = DeviceFixture.Random(wt.Length, 65); var db = DeviceFixture.Random(outChannels, 66); // added onto
        var dxGpu = (float[])dx.Clone(); var dwGpu = (float[])dw.Clone(); var dbGpu = (float[])db.Clone();
        Conv2dKernels.Backward(inputGradient ? dx : default, dw, dConv, x, wt, g, new float[Conv2dKernels.ScratchSize(g)]);
        int plane = g.OutHeight * g.OutWidth;
        for (int s = 0; s < batch; s++)
            for (int o = 0; o < outChannels; o++)
                for (int p = 0; p < plane; p++) db[o] += dConv[(s * outChannels + o) * plane + p];

        using var X = f.Upload(x); using var W = f.Upload(wt); using var B = f.Upload(bias ? b : [0f]); using var DY = f.Upload(dy);
        using var Y = f.Device.Allocate(y.Length); using var A = f.Device.AllocateInts(y.Length); using var S = f.Device.Allocate(GpuKernels.Conv2dScratch(g));
        using var DX = f.Upload(dxGpu); using var DW = f.Upload(dwGpu); using var DB = f.Upload(dbGpu);
        long before = f.Device.LaunchCount;
        K.Conv2dMaxPool2dForward(Y.View, A.View, X.View, W.View, bias ? B.View : default, g, pg, S.View, relu);
        Assert.Equal(3, f.Device.LaunchCount - before);
        DeviceFixture.Close(y, DeviceFixture.Download(Y, y.Length), 1e-5f, "y");
        var argGpu = new int[y.Length]; A.View.SubView(0, y.Length).CopyToCPU(argGpu);
        Assert.Equal(arg, argGpu);
        before = f.Device.LaunchCount;
        K.Conv2dMaxPool2dBackward(inputGradient ? DX.View : default, DW.View, bias ? DB.View : default, DY.View, Y.View, A.View, X.View, W.View, g, pg, S.View, relu);
        Assert.Equal(inputGradient ? 5 : 3, f.Device.LaunchCount - before);
        DeviceFixture.Close(dw, DeviceFixture.Download(DW, dw.Length), 1e-5f, "dw");
        DeviceFixture.Close(inputGradient ? dx : dxGpu, DeviceFixture.Download(DX, dx.Length), 1e-5f, "dx");
        DeviceFixture.Close(bias ? db : dbGpu, DeviceFixture.Download(DB, db.Length), 1e-5f, "db");
        // The pool must take what the convolution gives.
        var other = new Pool2dGeometry(batch, outChannels + 1, g.OutHeight, g.OutWidth, window, window, poolStride, poolStride, poolPad, poolPad);
        Assert.Contains("the convolution gives", Assert.Throws<ArgumentException>(() => K.Conv2dMaxPool2dForward(Y.View, A.View, X.View, W.View, default, g, other, S.View, relu)).Message);
    }

    [Fact]
    public void Token_ids_are_grouped_by_id_with_each_ids_positions_in_order()
    {
        int[] ids = [5, 0, 5, 3, 0, 5, 9, 3];
        var layout = new int[3 * ids.Length + 1];
        var counts = new int[2]; // grows to the largest id
        int runs = TokenRunsBuilder.Group(ids, layout, ref counts);
        Assert.Equal(4, runs);
        Assert.Equal([1, 4, 3, 7, 0, 2, 5, 6], layout[..8]);   // the positions of 0, then 3, 5 and 9, each in order
        Assert.Equal([0, 2, 4, 7, 8], layout[8..13]);          // where each id's positions begin, and the end
        Assert.Equal([0, 3, 5, 9], layout[13..17]);            // the ids
        Assert.Equal(0, TokenRunsBuilder.Group([], layout, ref counts));
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenRunsBuilder.Group([1, -1], layout, ref counts));
    }

    [Fact]
    public void Embedding_gradients_over_ids_grouped_on_the_host_match_the_CPU_for_distinct_repeated_and_padded_ids()
    {
        const int vocab = 50, dim = 20;
        using var runs = new TokenRunsBuilder();
        var rng = new Random(72);
        foreach (int count in new[] { 1, 7, 65, 300 })
        foreach (int spread in new[] { 1, 3, vocab })
        {
            var ids = Enumerable.Range(0, count).Select(_ => rng.Next(spread)).ToArray();
            var dy = DeviceFixture.Random(count * dim, count + spread); var start = DeviceFixture.Random(vocab * dim, 73);
            var expected = (float[])start.Clone();
            EmbeddingKernels.Backward(expected, dy, ids, count, dim, paddingIdx: 0);
            using var DY = f.Upload(dy); using var T = f.Upload(start);
            runs.Set(ids);
            K.EmbeddingBackward(T.View, DY.View, runs.Runs(f.Device), dim, paddingIdx: 0);
            DeviceFixture.Close(expected, DeviceFixture.Download(T, start.Length), 1e-5f, $"table gradient ({count} ids of {spread})");
        }
    }

    [Theory]
    [InlineData(1, 1, -1)]
    [InlineData(40, 7, -1)]
    [InlineData(70, 33, 2)] // a padding row that keeps its gradient
    public void Embedding_gradients_sum_repeated_ids_in_position_order(int count, int dim, int paddingIdx)
    {
        const int vocab = 6; // few rows: ids repeat many times
        var ids = Enumerable.Range(0, count).Select(i => i * 7 % 11 % vocab).ToArray();
        var dy = DeviceFixture.Random(count * dim, 70); var start = DeviceFixture.Random(vocab * dim, 71);
        var expected = (float[])start.Clone();
        EmbeddingKernels.Backward(expected, dy, ids, count, dim, paddingIdx);
        float[]? first = null;
        for (int run = 0; run < 2; run++)
        {
            using var I = f.Upload(ids); using var DY = f.Upload(dy); using var T = f.Upload(start);
            K.EmbeddingBackward(T.View, DY.View, I.View, count, dim, paddingIdx);
            var table = DeviceFixture.Download(T, start.Length);
            DeviceFixture.Close(expected, table, 1e-5f, "table gradient");
            if (paddingIdx >= 0) Assert.Equal(start.AsSpan(paddingIdx * dim, dim), table.AsSpan(paddingIdx * dim, dim));
            if (first is null) first = table; else Assert.Equal(first, table);
        }
    }
}
