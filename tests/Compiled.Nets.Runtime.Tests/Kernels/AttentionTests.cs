using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>
/// Multi-head attention: the definition (double) against finite differences, and the GEMM-based float kernel against
/// the definition, with padding masks (including a sample that is all padding) and attention dropout.
/// </summary>
public class AttentionTests
{
    // Sample 0 real everywhere; sample 1 has its last positions padded; sample 2 (when present) is all padding.
    private static int[] Mask(int batch, int seq)
    {
        var m = new int[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++) m[b * seq + t] = b == 0 || (b == 1 && t < Math.Max(1, seq - 2)) ? 1 : 0;
        return m;
    }

    private static double[] DropMask(int n, ulong seed)
    {
        var r = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextFloat() < 0.25f ? 0.0 : 1 / 0.75).ToArray();
    }

    [Theory]
    [InlineData(1, 3, 1, 2, false)]
    [InlineData(2, 4, 2, 3, false)]
    [InlineData(2, 4, 2, 2, true)] // (no all-padding sample here: its scores are float.MinValue-absorbed constants, so
                                   // the true derivative is 0 while autograd, ours and PyTorch's, treats the mask as additive)
    public void Definition_Backward_MatchesFiniteDifferences(int b, int t, int h, int d, bool dropout)
    {
        int n = b * t * h * d;
        var q = GradCheck.Random(n, 1); var k = GradCheck.Random(n, 2); var v = GradCheck.Random(n, 3);
        var u = GradCheck.Random(n, 4); // loss = Σ u ⊙ ctx
        var mask = Mask(b, t);
        var drop = dropout ? DropMask(b * h * t * t, 5) : [];
        double Loss()
        {
            var ctx = new double[n]; var probs = new double[b * h * t * t];
            AttentionKernels.Reference.Forward<double>(ctx, probs, q, k, v, mask, drop, b, t, h, d);
            return GradCheck.Dot(u, ctx);
        }
        var c0 = new double[n]; var p0 = new double[b * h * t * t];
        AttentionKernels.Reference.Forward<double>(c0, p0, q, k, v, mask, drop, b, t, h, d);
        var dq = new double[n]; var dk = new double[n]; var dv = new double[n];
        AttentionKernels.Reference.Backward<double>(dq, dk, dv, u, p0, q, k, v, drop, b, t, h, d);
        GradCheck.Check(q, Loss, dq, "dq");
        GradCheck.Check(k, Loss, dk, "dk");
        GradCheck.Check(v, Loss, dv, "dv");
    }

    [Theory]
    [InlineData(1, 1, 1, 1, false)]
    [InlineData(2, 5, 2, 3, false)]
    [InlineData(3, 17, 3, 8, true)]
    [InlineData(3, 33, 2, 16, false)]
    [InlineData(2, 65, 4, 16, true)]
    public void FloatKernel_MatchesDefinition(int b, int t, int h, int d, bool dropout)
    {
        int n = b * t * h * d, pn = b * h * t * t;
        var q = GradCheck.Random(n, 11, 2); var k = GradCheck.Random(n, 12, 2); var v = GradCheck.Random(n, 13);
        var dctx = GradCheck.Random(n, 14);
        var mask = Mask(b, t);
        var drop = dropout ? DropMask(pn, 15) : [];
        var ctxRef = new double[n]; var pRef = new double[pn];
        AttentionKernels.Reference.Forward<double>(ctxRef, pRef, q, k, v, mask, drop, b, t, h, d);
        var dqRef = new double[n]; var dkRef = new double[n]; var dvRef = new double[n];
        AttentionKernels.Reference.Backward<double>(dqRef, dkRef, dvRef, dctx, pRef, q, k, v, drop, b, t, h, d);

        float[] F(double[] a) => a.Select(x => (float)x).ToArray();
        var scratch = new float[AttentionKernels.ScratchSize(t)];
        var ctx = new float[n]; var probs = new float[pn];
        AttentionKernels.Forward(ctx, probs, F(q), F(k), F(v), mask, F(drop), b, t, h, d, scratch);
        FiniteDifferenceTests.Close(F(pRef), probs, "probs", 1e-5f);
        FiniteDifferenceTests.Close(F(ctxRef), ctx, "ctx", 1e-5f);
        // Backward accumulates: start from ones and subtract them again.
        var dq = Enumerable.Repeat(1f, n).ToArray(); var dk = (float[])dq.Clone(); var dv = (float[])dq.Clone();
        AttentionKernels.Backward(dq, dk, dv, F(dctx), probs, F(q), F(k), F(v), F(drop), b, t, h, d, scratch);
        FiniteDifferenceTests.Close(F(dqRef), dq.Select(x => x - 1f).ToArray(), "dq", 1e-4f);
        FiniteDifferenceTests.Close(F(dkRef), dk.Select(x => x - 1f).ToArray(), "dk", 1e-4f);
        FiniteDifferenceTests.Close(F(dvRef), dv.Select(x => x - 1f).ToArray(), "dv", 1e-4f);
        // Overwrite mode: whatever the buffers held (NaN here) is replaced.
        dq = Enumerable.Repeat(float.NaN, n).ToArray(); dk = (float[])dq.Clone(); dv = (float[])dq.Clone();
        AttentionKernels.Backward(dq, dk, dv, F(dctx), probs, F(q), F(k), F(v), F(drop), b, t, h, d, scratch, accumulate: false);
        FiniteDifferenceTests.Close(F(dqRef), dq, "dq (overwritten)", 1e-4f);
        FiniteDifferenceTests.Close(F(dkRef), dk, "dk (overwritten)", 1e-4f);
        FiniteDifferenceTests.Close(F(dvRef), dv, "dv (overwritten)", 1e-4f);
    }

    [Fact]
    public void PaddedKeys_GetNoAttention_AndAnAllPaddingRowIsUniformNotNaN()
    {
        const int b = 3, t = 4, h = 1, d = 2;
        var q = GradCheck.Random(b * t * d, 21, 3).Select(x => (float)x).ToArray();
        var k = GradCheck.Random(b * t * d, 22, 3).Select(x => (float)x).ToArray();
        var v = GradCheck.Random(b * t * d, 23).Select(x => (float)x).ToArray();
        var mask = Mask(b, t); // sample 1: keys 2, 3 padded; sample 2: all padded
        var ctx = new float[q.Length]; var probs = new float[b * t * t];
        AttentionKernels.Forward(ctx, probs, q, k, v, mask, default, b, t, h, d, default);
        for (int i = 0; i < t; i++)
        {
            Assert.Equal(0f, probs[(1 * t + i) * t + 2]); Assert.Equal(0f, probs[(1 * t + i) * t + 3]);
            for (int j = 0; j < t; j++) Assert.Equal(0.25f, probs[(2 * t + i) * t + j], 1e-6f);
        }
        Assert.All(ctx, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void WrongSizes_NameTheShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => AttentionKernels.Forward(new float[10], new float[100], new float[24], new float[24], new float[24], default, default, 2, 3, 2, 2, default));
        Assert.Contains("[2, 3, 2×2]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => AttentionKernels.Forward(new float[24], new float[36], new float[24], new float[24], new float[24], new int[5], default, 2, 3, 2, 2, default));
        Assert.Contains("mask", ex.Message);
    }
}
