using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>The per-layer cache of Winograd-transformed weights must never serve weights other than the current ones.</summary>
public class Conv2dWeightCacheTests
{
    private static readonly Conv2dGeometry G = new(3, 16, 9, 11, 20, 3, 3, 1, 1, 1, 1, 1, 1);

    private static float[] Forward(float[] x, float[] w, Conv2dWeightCache? cache) => Forward(x, w, cache, G);

    private static float[] Forward(float[] x, float[] w, Conv2dWeightCache? cache, Conv2dGeometry g)
    {
        var y = new float[g.Batch * g.OutSize];
        Conv2dKernels.Forward(y, x, w, default, g, new float[Conv2dKernels.ScratchSize(g)], cache);
        return y;
    }

    private static float[] InputGradient(float[] dy, float[] x, float[] w, Conv2dWeightCache? cache)
    {
        var dx = new float[x.Length];
        Conv2dKernels.Backward(dx, default, dy, x, w, G, new float[Conv2dKernels.ScratchSize(G)], accumulateDx: false, cache);
        return dx;
    }

    [Fact]
    public void CachedWeights_FollowEveryChange_InBothOrientations()
    {
        Assert.Equal(Gemm.UsesAvx512, Conv2dKernels.UsesWinograd(G));
        var x = GradCheck.Random(G.Batch * G.InSize, 1).Select(v => (float)v).ToArray();
        var w = GradCheck.Random(G.WeightSize, 2).Select(v => (float)v).ToArray();
        var dy = GradCheck.Random(G.Batch * G.OutSize, 3).Select(v => (float)v).ToArray();
        var cache = new Conv2dWeightCache();
        // First call fills the cache, the second reuses it: both equal the uncached result exactly.
        Assert.Equal(Forward(x, w, null), Forward(x, w, cache));
        Assert.Equal(Forward(x, w, null), Forward(x, w, cache));
        Assert.Equal(InputGradient(dy, x, w, null), InputGradient(dy, x, w, cache));
        // A write into the same array (as an optimizer step or a direct write into the store makes) is seen.
        foreach (int i in new[] { 0, 37, G.WeightSize - 1 })
        {
            var before = Forward(x, w, cache);
            w[i] += 0.25f;
            var after = Forward(x, w, cache);
            Assert.Equal(Forward(x, w, null), after);
            Assert.NotEqual(before, after);
            Assert.Equal(InputGradient(dy, x, w, null), InputGradient(dy, x, w, cache));
        }
        // Other weights of the same size (another array) through the same cache.
        var w2 = GradCheck.Random(G.WeightSize, 9).Select(v => (float)v).ToArray();
        Assert.Equal(Forward(x, w2, null), Forward(x, w2, cache));
        Assert.Equal(InputGradient(dy, x, w2, null), InputGradient(dy, x, w2, cache));
    }

    [Fact]
    public void CachedWeights_SeeAChangeInTheLastValues()
    {
        // 17 × 16 × 9 = 2448 weights: 38 blocks of 64 compared as vectors, then 16 one by one.
        var g = new Conv2dGeometry(2, 16, 7, 8, 17, 3, 3, 1, 1, 1, 1, 1, 1);
        var x = GradCheck.Random(g.Batch * g.InSize, 4).Select(v => (float)v).ToArray();
        var w = GradCheck.Random(g.WeightSize, 5).Select(v => (float)v).ToArray();
        var cache = new Conv2dWeightCache();
        Assert.Equal(Forward(x, w, null, g), Forward(x, w, cache, g));
        w[^1] = -w[^1];
        Assert.Equal(Forward(x, w, null, g), Forward(x, w, cache, g));
        w[^2] += 1f;
        Assert.Equal(Forward(x, w, null, g), Forward(x, w, cache, g));
    }
}
