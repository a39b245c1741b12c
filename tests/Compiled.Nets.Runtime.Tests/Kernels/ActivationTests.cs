using System.Runtime.Intrinsics;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>
/// LeakyReLU, SiLU, ELU and Hardswish: the float kernels against the formulas in double, their derivatives against
/// central finite differences of those formulas in double, and the Vector512 forms against the scalar ones.
/// </summary>
public class ActivationTests
{
    private sealed record Case(string Name, Func<double, double> Exact, Func<float, float> Forward, Func<float, float, float> Grad,
        Func<Vector512<float>, Vector512<float>> VectorForward, Func<Vector512<float>, Vector512<float>, Vector512<float>> VectorGrad);

    private static readonly Case[] s_cases =
    [
        new("LeakyReLU(0.2)", x => x > 0 ? x : 0.2 * x, x => Elementwise.LeakyRelu(x, 0.2f), (x, g) => Elementwise.LeakyReluGrad(x, g, 0.2f),
            x => Elementwise.LeakyRelu(x, 0.2f), (x, g) => Elementwise.LeakyReluGrad(x, g, 0.2f)),
        new("LeakyReLU(-0.5)", x => x > 0 ? x : -0.5 * x, x => Elementwise.LeakyRelu(x, -0.5f), (x, g) => Elementwise.LeakyReluGrad(x, g, -0.5f),
            x => Elementwise.LeakyRelu(x, -0.5f), (x, g) => Elementwise.LeakyReluGrad(x, g, -0.5f)),
        new("SiLU", x => x / (1 + Math.Exp(-x)), Elementwise.Silu, Elementwise.SiluGrad, Elementwise.Silu, Elementwise.SiluGrad),
        new("ELU(1)", x => x > 0 ? x : Math.Exp(x) - 1, x => Elementwise.Elu(x, 1f), (x, g) => Elementwise.EluGrad(x, g, 1f),
            x => Elementwise.Elu(x, 1f), (x, g) => Elementwise.EluGrad(x, g, 1f)),
        new("ELU(0.3)", x => x > 0 ? x : 0.3 * (Math.Exp(x) - 1), x => Elementwise.Elu(x, 0.3f), (x, g) => Elementwise.EluGrad(x, g, 0.3f),
            x => Elementwise.Elu(x, 0.3f), (x, g) => Elementwise.EluGrad(x, g, 0.3f)),
        new("Hardswish", x => x * Math.Min(Math.Max(x + 3, 0), 6) / 6, Elementwise.Hardswish, Elementwise.HardswishGrad, Elementwise.Hardswish, Elementwise.HardswishGrad),
    ];

    public static TheoryData<int> Cases() { var d = new TheoryData<int>(); for (int i = 0; i < s_cases.Length; i++) d.Add(i); return d; }

    // Points away from the kinks (0 and ±3), where the derivative is defined and a finite difference converges.
    private static IEnumerable<double> Points()
    {
        for (double x = -8.03; x <= 8; x += 0.0917) if (Math.Abs(x) > 1e-3 && Math.Abs(Math.Abs(x) - 3) > 1e-3) yield return x;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_MatchesTheFormulaInDouble(int i)
    {
        var c = s_cases[i];
        foreach (double x in Points())
        {
            double exact = c.Exact(x), actual = c.Forward((float)x);
            Assert.True(Math.Abs(exact - actual) <= 2e-6 * (1 + Math.Abs(exact)), $"{c.Name}({x}) = {actual}, exact {exact}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Grad_MatchesCentralFiniteDifferencesInDouble(int i)
    {
        var c = s_cases[i];
        const double h = 1e-5;
        foreach (double x in Points())
        {
            double numeric = (c.Exact(x + h) - c.Exact(x - h)) / (2 * h);
            double actual = c.Grad((float)x, 0.7f);
            Assert.True(Math.Abs(0.7 * numeric - actual) <= 1e-5 * (1 + Math.Abs(numeric)), $"{c.Name}'({x}) = {actual / 0.7}, finite difference {numeric}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void VectorForms_AgreeWithScalarForms(int i)
    {
        var c = s_cases[i];
        for (double start = -9; start < 9; start += 16 * 0.113)
        {
            var xs = Enumerable.Range(0, 16).Select(k => (float)(start + k * 0.113)).ToArray();
            var gs = Enumerable.Range(0, 16).Select(k => 0.5f + k * 0.1f).ToArray();
            var y = c.VectorForward(Vector512.Create(xs));
            var g = c.VectorGrad(Vector512.Create(xs), Vector512.Create(gs));
            for (int k = 0; k < 16; k++)
            {
                Assert.Equal(c.Forward(xs[k]), y[k], 2e-6f * (1 + Math.Abs(y[k])));
                Assert.Equal(c.Grad(xs[k], gs[k]), g[k], 2e-6f * (1 + Math.Abs(g[k])));
            }
        }
    }

    [Fact]
    public void Every_Vector256_form_computes_what_its_Vector512_form_does()
    {
        // The generated loops take the Vector256 forms on CPUs without AVX-512: each must be its Vector512 form at half
        // the width (same formula), found by name so that a form added to one width and not the other fails here.
        var methods = typeof(Elementwise).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static);
        var narrow = methods.Where(m => m.ReturnType == typeof(Vector256<float>)).ToList();
        var wide = methods.Where(m => m.ReturnType == typeof(Vector512<float>)).ToList();
        Assert.Equal(wide.Select(m => m.Name).Order(), narrow.Select(m => m.Name).Order());
        foreach (var m256 in narrow)
        {
            var m512 = wide.Single(m => m.Name == m256.Name && m.GetParameters().Length == m256.GetParameters().Length);
            for (double start = -9; start < 9; start += 16 * 0.137)
            {
                var xs = Enumerable.Range(0, 16).Select(k => (float)(start + k * 0.137)).ToArray();
                var gs = Enumerable.Range(0, 16).Select(k => 0.5f - k * 0.1f).ToArray();
                object[] Args(bool is512) => m256.GetParameters().Select((p, n) => p.ParameterType == typeof(float) ? (object)0.3f
                    : n == 0 ? (is512 ? Vector512.Create(xs) : Vector256.Create(xs)) : (is512 ? Vector512.Create(gs) : Vector256.Create(gs))).ToArray();
                var y512 = (Vector512<float>)m512.Invoke(null, Args(true))!;
                var y256 = (Vector256<float>)m256.Invoke(null, Args(false))!;
                for (int k = 0; k < 8; k++)
                    Assert.True(y512[k].Equals(y256[k]) || Math.Abs(y512[k] - y256[k]) <= 2e-6f * (1 + Math.Abs(y512[k])),
                        $"{m256.Name} at {xs[k]}: Vector512 {y512[k]}, Vector256 {y256[k]}");
            }
        }
    }

    [Fact]
    public void Kinks_FollowPyTorchsConvention_AndNaNPropagates()
    {
        // At 0: leaky ReLU and ELU take the negative branch's slope; Hardswish is x/3 + ½ on [−3, 3], 0 below, 1 above.
        Assert.Equal(0.2f, Elementwise.LeakyReluGrad(0f, 1f, 0.2f));
        Assert.Equal(1f, Elementwise.EluGrad(0f, 1f, 1f));
        Assert.Equal(0f, Elementwise.HardswishGrad(-3.0001f, 1f));
        Assert.Equal(-0.5f, Elementwise.HardswishGrad(-3f, 1f));
        Assert.Equal(1.5f, Elementwise.HardswishGrad(3f, 1f));
        Assert.Equal(1f, Elementwise.HardswishGrad(3.0001f, 1f));
        foreach (var c in s_cases) Assert.True(float.IsNaN(c.Forward(float.NaN)), c.Name);
        Assert.Equal(-0f, Elementwise.Silu(-200f));
        Assert.Equal(-1f, Elementwise.Elu(-200f, 1f));
    }
}
