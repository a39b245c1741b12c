using Compiled.Nets.Kernels;
using Compiled.Nets.Training;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>bfloat16 rounding, the bfloat16-weight Linear kernel, and the read-only store that makes its copies safe.</summary>
public class BFloat16Tests
{
    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.5f, (ushort)0xC020)]
    [InlineData(float.PositiveInfinity, (ushort)0x7F80)]
    [InlineData(float.NegativeInfinity, (ushort)0xFF80)]
    [InlineData(float.MaxValue, (ushort)0x7F80)]   // rounds up past the largest bfloat16: infinity, as in PyTorch
    [InlineData(0f, (ushort)0x0000)]
    [InlineData(-0f, (ushort)0x8000)]
    public void FromSingle_RoundsToNearest(float value, ushort expected) => Assert.Equal(expected, BFloat16.FromSingle(value));

    [Theory]
    [InlineData(0x3F808000u, (ushort)0x3F80)]      // exactly half way, even kept half: stays
    [InlineData(0x3F818000u, (ushort)0x3F82)]      // half way, odd kept half: rounds up to even
    [InlineData(0x3F808001u, (ushort)0x3F81)]      // just above half: up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)]      // just below half: down
    [InlineData(0x007F8000u, (ushort)0x0080)]      // a subnormal carrying into the smallest normal
    public void FromSingle_BreaksTiesToEven(uint bits, ushort expected) =>
        Assert.Equal(expected, BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(bits)));

    [Fact]
    public void FromSingle_KeepsNaNsNaN_AndWideningIsExact()
    {
        // A NaN whose payload sits only in the low half would round to infinity by the plain rule.
        foreach (uint bits in new uint[] { 0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF })
            Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(bits)))), $"0x{bits:X8}");
        for (int v = 0; v < 65536; v += 7)
        {
            float f = BFloat16.ToSingle((ushort)v);
            if (!float.IsNaN(f)) Assert.Equal((ushort)v, BFloat16.FromSingle(f));
        }
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 8, 16)]
    [InlineData(1, 17, 63)]
    [InlineData(1, 9, 129)]
    [InlineData(1, 512, 6272)]   // the ConvNet's fc1 at batch 1 (both cores)
    [InlineData(2, 7, 65)]
    [InlineData(3, 1, 17)]
    [InlineData(4, 63, 127)]
    public void LinearForward_WithBFloat16Weights_MatchesTheRoundedWeightsInDouble(int rows, int outF, int inF)
    {
        var x = Random(rows * inF, 1); var w = Random(outF * inF, 2);
        var w16 = new ushort[w.Length];
        BFloat16.FromSingle(w, w16);
        var y = Enumerable.Repeat(float.NaN, rows * outF).ToArray();   // overwritten, NaN included
        LinearKernels.Forward(y, x, w, w16, rows, inF, outF);
        AssertFollowsRoundedWeights(y, x, w, w16, rows, outF, inF);
        // The Vector256 dot products that CPUs without AVX-512 run (widening eight values at a time).
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported)
        {
            var y256 = Enumerable.Repeat(float.NaN, rows * outF).ToArray();
            Gemm.SkinnyBFloat16(rows, outF, inF, x, w16, y256, vector256: true);
            AssertFollowsRoundedWeights(y256, x, w, w16, rows, outF, inF);
        }
    }

    private static void AssertFollowsRoundedWeights(float[] y, float[] x, float[] w, ushort[] w16, int rows, int outF, int inF)
    {
        double offRounded = 0, offExact = 0;
        for (int n = 0; n < rows; n++)
            for (int o = 0; o < outF; o++)
            {
                double rounded = 0, exact = 0, scale = 0;
                for (int i = 0; i < inF; i++)
                {
                    rounded += (double)x[n * inF + i] * BFloat16.ToSingle(w16[o * inF + i]);
                    exact += (double)x[n * inF + i] * w[o * inF + i];
                    scale += Math.Abs((double)x[n * inF + i] * w[o * inF + i]);
                }
                float got = y[n * outF + o];
                Assert.True(Math.Abs(got - rounded) <= 1e-5 * scale + 1e-30, $"y[{n},{o}] = {got}, rounded weights give {rounded}");
                offRounded += Math.Abs(got - rounded); offExact += Math.Abs(got - exact);
            }
        // The result follows the rounded weights, not the float32 ones (which the tolerance alone might not tell apart).
        if (inF >= 16) Assert.True(offRounded < 0.25 * offExact, $"off the rounded weights' result by {offRounded}, the float32 ones' by {offExact}");
    }

    [Fact]
    public void LinearForward_AboveFourRows_OrWithoutACopy_ReadsTheFloat32Weights()
    {
        const int inF = 40, outF = 9;
        var w = Random(outF * inF, 3); var w16 = new ushort[w.Length];
        BFloat16.FromSingle(w, w16);
        foreach (int rows in new[] { 1, 5 })
        {
            var x = Random(rows * inF, 4);
            var expected = new float[rows * outF]; var got = new float[rows * outF];
            LinearKernels.Forward(expected, x, w, rows, inF, outF);
            LinearKernels.Forward(got, x, w, rows == 1 ? default : w16, rows, inF, outF);
            Assert.Equal(expected, got);
        }
        Assert.Throws<ArgumentException>(() => LinearKernels.Forward(new float[outF], Random(inF, 5), w, new ushort[3], 1, inF, outF));
    }

    private static ParameterStore Store()
    {
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [3, 20], ParameterRole.Weight, ParameterInit.Uniform(1));
        b.Add("fc.bias", [3], ParameterRole.Bias, ParameterInit.Uniform(1));
        b.AddBuffer("bn.running_mean", [3], ParameterRole.RunningMean, ParameterInit.Zeros);
        var s = b.Build();
        s.Initialize(11);
        return s;
    }

    [Fact]
    public void ReadOnlyStore_RefusesEveryWriteToParameters_NamingTheWayOut()
    {
        using var s = Store();
        var w = s["fc.weight"];
        var opt = new AdamW(s);
        s.MakeReadOnly(WeightPrecision.BFloat16);
        var e = Assert.Throws<InvalidOperationException>(() => s.Value(w));
        Assert.Contains("'fc.weight'", e.Message);
        Assert.Contains("MakeWritable", e.Message);
        Assert.Throws<InvalidOperationException>(() => s.Values.Length);
        Assert.Throws<InvalidOperationException>(() => s.Initialize(1));
        Assert.Throws<InvalidOperationException>(() => opt.Step());
        string path = Path.Combine(Path.GetTempPath(), $"cnets-ro-{Guid.NewGuid():N}.safetensors");
        try
        {
            Checkpoint.Save(path, s);   // reading is fine
            Assert.Throws<InvalidOperationException>(() => Checkpoint.Load(path, s));
        }
        finally { File.Delete(path); }
        // Buffers, gradients and reads stay available.
        s.Value(s["bn.running_mean"])[0] = 1f;
        s.Gradient(w)[0] = 1f;
        Assert.Equal(60, s.ReadValue(w).Length);
        s.MakeWritable();
        s.Value(w)[0] = 2f;
        opt.Step();
    }

    [Fact]
    public void BFloat16Copies_ExistOnlyWhileReadOnly_AndFollowTheValuesAfterAWritablePhase()
    {
        using var s = Store();
        var w = s["fc.weight"];
        Assert.True(s.BFloat16Value(w).IsEmpty);
        s.MakeReadOnly();                                        // float32 inference: no copies
        Assert.True(s.BFloat16Value(w).IsEmpty);
        s.MakeReadOnly(WeightPrecision.BFloat16);
        var first = s.BFloat16Value(w).ToArray();
        Assert.Equal(BFloat16.FromSingle(s.ReadValue(w)[5]), first[5]);
        Assert.True(s.BFloat16Value(s["bn.running_mean"]).IsEmpty);
        s.MakeWritable();
        Assert.True(s.BFloat16Value(w).IsEmpty);
        s.Value(w)[5] = 123.25f;                                  // changed while writable
        s.MakeReadOnly(WeightPrecision.BFloat16);
        Assert.Equal(BFloat16.FromSingle(123.25f), s.BFloat16Value(w)[5]);
    }

    private static float[] Random(int n, ulong seed)
    {
        var r = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextFloat() * 2 - 1).ToArray();
    }
}
