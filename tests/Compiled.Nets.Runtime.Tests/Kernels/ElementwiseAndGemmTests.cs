using System.Runtime.Intrinsics;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

public class ElementwiseAndGemmTests
{
    private static double ErfDouble(double x)
    {
        // erf by its Maclaurin series / continued fraction is overkill here: integrate exp(−t²) with Simpson's rule.
        int n = 2000; double h = x / n, s = 0;
        for (int i = 0; i <= n; i++) { double t = i * h, f = Math.Exp(-t * t); s += (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2) * f; }
        return 2 / Math.Sqrt(Math.PI) * s * h / 3;
    }

    [Fact]
    public void Relu_ScalarAndVectorForms_Agree_NaNStaysNaN()
    {
        // A fused loop's vector body and scalar tail must give the same result for every input, as libtorch's relu.
        float[] xs = [float.NaN, -0f, 0f, -1e-38f, 1e-45f, -3f, 2.5f, float.NegativeInfinity, float.PositiveInfinity];
        foreach (float x in xs)
        {
            float scalar = Elementwise.Relu(x), vector = Elementwise.Relu(System.Runtime.Intrinsics.Vector512.Create(x)).GetElement(0);
            Assert.Equal(BitConverter.SingleToUInt32Bits(vector), BitConverter.SingleToUInt32Bits(scalar));
        }
        Assert.True(float.IsNaN(Elementwise.Relu(float.NaN)));
    }

    [Fact]
    public void Gelu_MatchesExactErfForm_AndVectorMatchesScalar()
    {
        for (double x = -6; x <= 6; x += 0.137)
        {
            double exact = 0.5 * x * (1 + ErfDouble(x / Math.Sqrt(2)));
            Assert.True(Math.Abs(exact - Elementwise.Gelu((float)x)) < 2e-6 * (1 + Math.Abs(exact)), $"gelu({x})");
            double dexact = 0.5 * (1 + ErfDouble(x / Math.Sqrt(2))) + x * Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);
            Assert.True(Math.Abs(dexact - Elementwise.GeluGrad((float)x, 1f)) < 2e-6 * (1 + Math.Abs(dexact)), $"gelu'({x})");
        }
        var xs = Enumerable.Range(0, 16).Select(i => -4f + i * 0.53f).ToArray();
        var v = Vector512.Create(xs);
        var checks = new (Func<Vector512<float>, Vector512<float>> Vec, Func<float, float> Scalar)[]
        {
            (Elementwise.Gelu, Elementwise.Gelu), (Elementwise.Tanh, Elementwise.Tanh), (Elementwise.Sigmoid, Elementwise.Sigmoid), (Elementwise.Relu, Elementwise.Relu),
        };
        foreach (var (vec, scalar) in checks)
        {
            var r = vec(v);
            for (int i = 0; i < 16; i++) Assert.Equal(scalar(xs[i]), r[i], 1e-6f);
        }
        // The vector GELU derivative (one exp shared by erf and the density) against the exact one and the scalar form.
        for (double start = -6; start < 6; start += 16 * 0.071)
        {
            var xv = Enumerable.Range(0, 16).Select(i => (float)(start + i * 0.071)).ToArray();
            var gv = Elementwise.GeluGrad(Vector512.Create(xv), Vector512.Create(0.75f));
            for (int i = 0; i < 16; i++)
            {
                double x = xv[i], dexact = 0.75 * (0.5 * (1 + ErfDouble(x / Math.Sqrt(2))) + x * Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI));
                Assert.True(Math.Abs(dexact - gv[i]) < 2e-6 * (1 + Math.Abs(dexact)), $"vector gelu'({x}) = {gv[i]}, exact {dexact}");
                Assert.Equal(Elementwise.GeluGrad(xv[i], 0.75f), gv[i], 1e-6f);
            }
        }
    }

    public static TheoryData<int, int, int> GemmSizes()
    {
        var d = new TheoryData<int, int, int>();
        int[] sizes = { 1, 7, 17, 63, 65, 127, 129 };
        foreach (int m in sizes) d.Add(m, sizes[(m + 3) % sizes.Length], sizes[(m + 5) % sizes.Length]);
        d.Add(130, 200, 300);
        d.Add(260, 129, 513);
        // Skinny A (m ≤ 4, no packing), one and two cores, with odd column and depth tails.
        d.Add(1, 513, 300);
        d.Add(1, 29, 4100);
        d.Add(3, 130, 1000);
        d.Add(4, 77, 4099);
        d.Add(2, 1000, 70);
        // Narrow C computed as Cᵀ, long k split between the cores (with and without Cᵀ).
        d.Add(300, 20, 200);
        d.Add(64, 27, 1000);
        d.Add(40, 130, 2000);
        return d;
    }

    private delegate void SgemmCall(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc);

    [Theory]
    [MemberData(nameof(GemmSizes))]
    public void Sgemm_AllTransposes_MatchReference(int m, int n, int k) =>
        CompareWithReference(m, n, k, (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc) => Gemm.Sgemm(ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc));

    [Theory]
    [MemberData(nameof(GemmSizes))]
    public void SgemmVector256_AllTransposes_MatchReference(int m, int n, int k)
    {
        // The path of CPUs without AVX-512 (6×16 micro-kernel, 8×8 transposes, skinny dots), run here directly.
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported || !System.Runtime.Intrinsics.X86.Fma.IsSupported) return;
        CompareWithReference(m, n, k, (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc) => Gemm.SgemmVector256(ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc));
    }

    // Every transpose and beta against the reference loops, with padded strides; beta 0 must overwrite a NaN-filled C,
    // and the padding between rows of C stays untouched.
    private static void CompareWithReference(int m, int n, int k, SgemmCall sgemm)
    {
        var r = new Rng((ulong)(m * 1000 + n * 10 + k));
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => r.NextFloat() - 0.5f).ToArray();
        foreach (bool ta in new[] { false, true })
        foreach (bool tb in new[] { false, true })
        foreach (float beta in new[] { 0f, 0.5f, 1f })
        {
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
            var a = Rand((ta ? k : m) * lda); var b = Rand((tb ? n : k) * ldb);
            var c = Rand(m * ldc); var cRef = (float[])c.Clone();
            if (beta == 0f) for (int i = 0; i < m; i++) Array.Fill(c, float.NaN, i * ldc, n);
            sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, c, ldc);
            Gemm.SgemmReference(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, cRef, ldc);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    Assert.True(Math.Abs(cRef[i * ldc + j] - c[i * ldc + j]) < 1e-4f * Math.Sqrt(k) + 1e-5f, $"{ta}/{tb}/β={beta} C[{i},{j}] {cRef[i * ldc + j]} vs {c[i * ldc + j]}");
            for (int i = 0; i < m; i++) Assert.Equal(cRef[i * ldc + n], c[i * ldc + n]);
        }
    }

    [Theory]
    [InlineData(96, 256, 128, false)]   // packed
    [InlineData(2, 300, 50, false)]     // skinny A, B streamed by columns
    [InlineData(3, 301, 70, true)]      // skinny A, B as rows (a Linear layer at batch ≤ 4)
    public void Sgemm_BetaZero_OverwritesNaN_AndAllocatesNothing(int m, int n, int k, bool transB)
    {
        var a = new float[m * k]; var b = new float[k * n]; var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
        Array.Fill(a, 1f); Array.Fill(b, 2f);
        Gemm.Sgemm(false, transB, m, n, k, 1f, a, k, b, transB ? k : n, 0f, c, n);
        Assert.All(c, v => Assert.Equal(2f * k, v));
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() => Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n)));
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, new float[10], n));
    }
}
