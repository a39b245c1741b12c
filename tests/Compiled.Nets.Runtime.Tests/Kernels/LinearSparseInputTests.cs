using System.Runtime.Intrinsics.X86;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>The batch-1..4 Linear product over transposed weights that skips zero inputs, and the store's transposed copies.</summary>
public class LinearSparseInputTests
{
    public static TheoryData<int, int, int, double> Shapes => new()
    {
        { 1, 16, 1, 0.0 },
        { 1, 272, 17, 0.5 },      // a 256-wide tile and a 16-wide one
        { 1, 512, 6272, 0.85 },   // the ConvNet's fc1 as a trained network sees it (both cores)
        { 1, 336, 129, 1.0 },     // every input zero: the output is zero
        { 2, 80, 63, 0.3 },
        { 3, 16, 100, 0.9 },
        { 4, 336, 129, 0.6 },     // 64-wide tiles of four rows, then a 16-wide one
        { 4, 512, 4096, 0.7 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SkipsZeroInputs_AndMatchesTheFullSumInDouble(int rows, int outF, int inF, double zeros)
    {
        var x = ReluLike(rows * inF, zeros, 1);
        var w = Random(outF * inF, 2);
        var wt = Transposed(w, outF, inF);
        var w16 = new ushort[wt.Length];
        BFloat16.FromSingle(wt, w16);
        var rounded = w.Select(v => BFloat16.ToSingle(BFloat16.FromSingle(v))).ToArray();
        foreach (bool vector256 in Paths())
        {
            var y = Enumerable.Repeat(float.NaN, rows * outF).ToArray();   // overwritten, NaN included
            LinearKernels.SparseInput(y, x, w, new TransposedWeights(wt), rows, inF, outF, vector256, denseAbove: 1);
            AssertClose(y, x, w, rows, outF, inF, $"float32, {(vector256 ? "Vector256" : "Vector512")}");
            y = Enumerable.Repeat(float.NaN, rows * outF).ToArray();
            LinearKernels.SparseInput(y, x, w, new TransposedWeights(w16), rows, inF, outF, vector256, denseAbove: 1);
            AssertClose(y, x, rounded, rows, outF, inF, $"bfloat16, {(vector256 ? "Vector256" : "Vector512")}");
        }
    }

    [Fact]
    public void ANaNInput_ReachesEveryOutputOfItsRow()
    {
        const int rows = 2, outF = 64, inF = 300;
        var x = ReluLike(rows * inF, 0.8, 3);
        x[inF + 7] = float.NaN;
        var w = Random(outF * inF, 4);
        var wt = Transposed(w, outF, inF);
        foreach (bool vector256 in Paths())
        {
            var y = new float[rows * outF];
            LinearKernels.SparseInput(y, x, w, new TransposedWeights(wt), rows, inF, outF, vector256, denseAbove: 1);
            Assert.All(y.Take(outF), v => Assert.False(float.IsNaN(v)));
            Assert.All(y.Skip(outF), v => Assert.True(float.IsNaN(v)));
        }
    }

    [Fact]
    public void WithoutACopy_OrOutsideItsShapes_TheDenseProductRuns()
    {
        const int inF = 600, outF = 128;
        var w = Random(outF * inF, 5);
        var wt = Transposed(w, outF, inF);
        foreach (int rows in new[] { 1, 5 })
        {
            var x = ReluLike(rows * inF, 0.5, 6);
            var expected = new float[rows * outF]; var got = new float[rows * outF];
            LinearKernels.Forward(expected, x, w, rows, inF, outF);
            LinearKernels.ForwardSparseInput(got, x, w, rows == 1 ? default : new TransposedWeights(wt), rows, inF, outF);
            Assert.Equal(expected, got);
        }
        Assert.False(LinearKernels.UsesTransposed(1, 600, 120));   // out-features not a multiple of 16
        Assert.False(LinearKernels.UsesTransposed(1, 10, 16));     // too small to be worth a copy
        Assert.False(LinearKernels.UsesTransposed(5, 600, 128));
        if (LinearKernels.UsesTransposed(1, inF, outF))
            Assert.Throws<ArgumentException>(() => LinearKernels.ForwardSparseInput(new float[outF], new float[inF], w, new TransposedWeights(new float[10]), 1, inF, outF));
        Assert.Throws<ArgumentException>(() => LinearKernels.SparseInput(new float[outF], new float[inF], w, new TransposedWeights(wt), 1, inF, 120, false, 1));
    }

    [Fact]
    public void MostlyNonZeroInputs_RunTheDenseFloat32Product()
    {
        const int inF = 600, outF = 128;
        var w = Random(outF * inF, 7);
        var wt = Transposed(w, outF, inF);
        var x = ReluLike(inF, 0.2, 8);
        var expected = new float[outF]; var dense = new float[outF]; var sparse = new float[outF];
        LinearKernels.Forward(expected, x, w, 1, inF, outF);
        LinearKernels.SparseInput(dense, x, w, new TransposedWeights(wt), 1, inF, outF, vector256: false, denseAbove: 0.6);
        LinearKernels.SparseInput(sparse, x, w, new TransposedWeights(wt), 1, inF, outF, vector256: false, denseAbove: 1);
        Assert.Equal(expected, dense);           // the same code, so the same bits
        Assert.NotEqual(expected, sparse);       // another order of the sums: float32 noise
        AssertClose(sparse, x, w, 1, outF, inF, "transposed");
    }

    [Fact]
    public void TransposedCopies_ExistOnlyWhileReadOnly_InTheStoresPrecision()
    {
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [3, 20], ParameterRole.Weight, ParameterInit.Uniform(1));
        b.Add("fc.bias", [3], ParameterRole.Bias, ParameterInit.Uniform(1));
        b.AddBuffer("bn.running_mean", [3], ParameterRole.RunningMean, ParameterInit.Zeros);
        using var s = b.Build();
        s.Initialize(11);
        var w = s["fc.weight"];
        Assert.True(s.TransposedValue(w).IsEmpty);
        s.MakeReadOnly();
        var t = s.TransposedValue(w).Single.ToArray();
        Assert.True(s.TransposedValue(w).BFloat16.IsEmpty);
        var values = s.ReadValue(w).ToArray();
        for (int o = 0; o < 3; o++)
            for (int i = 0; i < 20; i++) Assert.Equal(values[o * 20 + i], t[i * 3 + o]);
        Assert.True(s.TransposedValue(s["bn.running_mean"]).IsEmpty);
        Assert.Throws<ArgumentException>(() => s.TransposedValue(s["fc.bias"]));
        s.MakeReadOnly(WeightPrecision.BFloat16);
        var h = s.TransposedValue(w).BFloat16.ToArray();
        Assert.Equal(BFloat16.FromSingle(values[2 * 20 + 5]), h[5 * 3 + 2]);
        s.MakeWritable();
        Assert.True(s.TransposedValue(w).IsEmpty);
        s.Value(w)[2 * 20 + 5] = 123.25f;                          // changed while writable
        s.MakeReadOnly();
        Assert.Equal(123.25f, s.TransposedValue(w).Single[5 * 3 + 2]);
    }

    [Theory]
    [InlineData(3, 20)]
    [InlineData(16, 1)]
    [InlineData(37, 50)]       // two gathered 16-row blocks and a tail of 5 rows
    [InlineData(512, 300)]     // both cores
    public void Transpose_MovesEveryValue_AndRoundsAsTheScalarConversion(int rows, int cols)
    {
        var w = Random(rows * cols, 9);
        // Values whose rounding is special: ties, NaNs with payloads in the low half, infinities, the largest float.
        var special = new[] { float.NaN, BitConverter.UInt32BitsToSingle(0x7F800001), float.PositiveInfinity, float.NegativeInfinity,
            float.MaxValue, BitConverter.UInt32BitsToSingle(0x3F818000), BitConverter.UInt32BitsToSingle(0x3F808000), -0f, 1e-40f };
        for (int i = 0; i < w.Length; i += 7) w[i] = special[i % special.Length];
        var single = new float[w.Length]; var half = new ushort[w.Length];
        LinearKernels.Transpose(w, rows, cols, single, default);
        LinearKernels.Transpose(w, rows, cols, default, half);
        var flat = new ushort[w.Length];
        BFloat16.FromSingle(w, flat);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                float v = w[r * cols + c];
                Assert.Equal(BitConverter.SingleToUInt32Bits(v), BitConverter.SingleToUInt32Bits(single[c * rows + r]));
                Assert.Equal(BFloat16.FromSingle(v), half[c * rows + r]);
                Assert.Equal(BFloat16.FromSingle(v), flat[r * cols + c]);
            }
    }

    // The paths this CPU can run: Vector512 with AVX-512, Vector256 with AVX2 + FMA.
    private static IEnumerable<bool> Paths()
    {
        if (Gemm.UsesAvx512) yield return false;
        if (Avx2.IsSupported && Fma.IsSupported) yield return true;
    }

    private static void AssertClose(float[] y, float[] x, float[] w, int rows, int outF, int inF, string what)
    {
        for (int n = 0; n < rows; n++)
            for (int o = 0; o < outF; o++)
            {
                double sum = 0, scale = 0;
                for (int i = 0; i < inF; i++)
                {
                    sum += (double)x[n * inF + i] * w[o * inF + i];
                    scale += Math.Abs((double)x[n * inF + i] * w[o * inF + i]);
                }
                float got = y[n * outF + o];
                Assert.True(Math.Abs(got - sum) <= 1e-5 * scale + 1e-30, $"{what}: y[{n},{o}] = {got}, expected {sum}");
            }
    }

    private static float[] Transposed(float[] w, int outF, int inF)
    {
        var t = new float[w.Length];
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i];
        return t;
    }

    // A ReLU's output: about that fraction zero (some of them negative zero), the rest positive.
    private static float[] ReluLike(int n, double zeros, ulong seed)
    {
        var r = new Rng(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float u = r.NextFloat();
            x[i] = u < zeros ? (i % 3 == 0 ? -0f : 0f) : r.NextFloat() * 3;
        }
        return x;
    }

    private static float[] Random(int n, ulong seed)
    {
        var r = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextFloat() * 2 - 1).ToArray();
    }
}
