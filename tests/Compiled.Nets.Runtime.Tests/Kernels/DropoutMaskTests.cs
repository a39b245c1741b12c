using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Dropout masks, short (scalar stream) and long (eight vector lanes): values, rate, independence, seeding.</summary>
public class DropoutMaskTests
{
    [Theory]
    [InlineData(100, 0.1f)]      // scalar path
    [InlineData(200_000, 0.1f)]  // vector lanes
    [InlineData(200_003, 0.5f)]  // vector lanes plus a scalar tail
    [InlineData(65_536, 0.9f)]
    public void Mask_HasTheRightValues_Rate_AndNoSerialCorrelation(int n, float p)
    {
        var mask = new float[n];
        DropoutKernels.FillMask(mask, p, new Rng(7));
        float keep = 1f / (1f - p);
        Assert.All(mask, v => Assert.True(v == 0f || v == keep, $"value {v}"));
        double dropped = mask.Count(v => v == 0f) / (double)n;
        double sigma = Math.Sqrt(p * (1 - p) / n);
        Assert.True(Math.Abs(dropped - p) < 5 * sigma + 1e-9, $"dropped {dropped:F4}, expected {p} ± {5 * sigma:F4}");
        if (n < 1000) return;
        // Neighbours are independent: P(both dropped) ≈ p² (lanes interleave 8 streams and two halves of each output).
        for (int lag = 1; lag <= 16; lag *= 2)
        {
            int both = 0;
            for (int i = lag; i < n; i++) if (mask[i] == 0f && mask[i - lag] == 0f) both++;
            double pairs = n - lag, expected = p * p, tol = 5 * Math.Sqrt(expected * (1 - expected) / pairs);
            Assert.True(Math.Abs(both / pairs - expected) < tol, $"lag {lag}: {both / pairs:F4} vs {expected:F4}");
        }
    }

    [Fact]
    public void SameSeed_SameMask_OtherSeed_OtherMask_AndZeroPIsAllOnes()
    {
        float[] Mask(ulong seed) { var m = new float[10_000]; DropoutKernels.FillMask(m, 0.3f, new Rng(seed)); return m; }
        Assert.Equal(Mask(1), Mask(1));
        Assert.NotEqual(Mask(1), Mask(2));
        var ones = new float[500];
        DropoutKernels.FillMask(ones, 0f, new Rng(1));
        Assert.All(ones, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void ChannelMask_IsConstantPerPlane_AtTheRate()
    {
        const int planes = 4000, size = 9;
        var mask = new float[planes * size];
        DropoutKernels.FillChannelMask(mask, 0.3f, size, new Rng(5));
        int dropped = 0;
        for (int k = 0; k < planes; k++)
        {
            var plane = mask.AsSpan(k * size, size);
            Assert.True(plane.IndexOfAnyExcept(plane[0]) < 0, $"plane {k} is not constant");
            Assert.True(plane[0] == 0f || Math.Abs(plane[0] - 1f / 0.7f) < 1e-6f);
            if (plane[0] == 0f) dropped++;
        }
        Assert.InRange(dropped / (double)planes, 0.27, 0.33);
        Assert.Throws<ArgumentException>(() => DropoutKernels.FillChannelMask(new float[10], 0.3f, 3, new Rng(1)));
    }
}
