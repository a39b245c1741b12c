using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>L1, smooth L1 and binary cross-entropy on logits: the loss against its formula in double, the gradient
/// against central finite differences of that formula in double.</summary>
public class RegressionLossTests
{
    private sealed record Case(string Name, Func<double, double, double> Exact, Func<float[], float[], int, float> Forward, Action<float[], float[], float[], int, float> Backward);

    private static readonly Case[] s_cases =
    [
        new("L1", (x, t) => Math.Abs(x - t), (p, t, n) => L1Kernels.Forward(p, t, n), (d, p, t, n, s) => L1Kernels.Backward(d, p, t, n, s)),
        new("SmoothL1(1)", (x, t) => Math.Abs(x - t) < 1 ? 0.5 * (x - t) * (x - t) : Math.Abs(x - t) - 0.5,
            (p, t, n) => SmoothL1Kernels.Forward(p, t, n, 1f), (d, p, t, n, s) => SmoothL1Kernels.Backward(d, p, t, n, s, 1f)),
        new("SmoothL1(0.3)", (x, t) => Math.Abs(x - t) < 0.3 ? 0.5 * (x - t) * (x - t) / 0.3 : Math.Abs(x - t) - 0.15,
            (p, t, n) => SmoothL1Kernels.Forward(p, t, n, 0.3f), (d, p, t, n, s) => SmoothL1Kernels.Backward(d, p, t, n, s, 0.3f)),
        new("BCEWithLogits", (x, t) => -(t * Math.Log(1 / (1 + Math.Exp(-x))) + (1 - t) * Math.Log(1 - 1 / (1 + Math.Exp(-x)))),
            (p, t, n) => BceWithLogitsKernels.Forward(p, t, n), (d, p, t, n, s) => BceWithLogitsKernels.Backward(d, p, t, n, s)),
    ];

    public static TheoryData<int> Cases() { var d = new TheoryData<int>(); for (int i = 0; i < s_cases.Length; i++) d.Add(i); return d; }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LossAndGradient_MatchTheFormulaAndFiniteDifferencesInDouble(int i)
    {
        var c = s_cases[i];
        var r = new Rng(23);
        const int n = 301;
        var pred = Enumerable.Range(0, n).Select(_ => (r.NextFloat() * 2 - 1) * 4).ToArray();
        var target = c.Name.StartsWith("BCE", StringComparison.Ordinal)
            ? Enumerable.Range(0, n).Select(_ => r.NextFloat()).ToArray()
            : Enumerable.Range(0, n).Select(_ => (r.NextFloat() * 2 - 1) * 4).ToArray();
        double exact = Enumerable.Range(0, n).Sum(k => c.Exact(pred[k], target[k])) / n;
        Assert.Equal(exact, c.Forward(pred, target, n), 1e-5);

        var grad = Enumerable.Repeat(0.125f, n).ToArray();
        c.Backward(grad, pred, target, n, 2f / n);
        const double h = 1e-6;
        for (int k = 0; k < n; k++)
        {
            double d = pred[k] - target[k];
            if (c.Name.StartsWith("Smooth", StringComparison.Ordinal) && Math.Abs(Math.Abs(d) - (c.Name.Contains("0.3") ? 0.3 : 1)) < 1e-4) continue; // the kink
            double numeric = (c.Exact(pred[k] + h, target[k]) - c.Exact(pred[k] - h, target[k])) / (2 * h);
            Assert.True(Math.Abs(0.125 + 2.0 / n * numeric - grad[k]) < 1e-6, $"{c.Name}: d/dx at {pred[k]} (target {target[k]}) = {(grad[k] - 0.125) * n / 2}, finite difference {numeric}");
        }
    }

    [Fact]
    public void BceWithLogits_IsStableForLargeLogits_AndL1HasAZeroGradientAtEquality()
    {
        float[] logits = [100f, -100f, 30f], targets = [1f, 0f, 0f];
        Assert.Equal(10.0, BceWithLogitsKernels.Forward(logits, targets, 3), 1e-4); // (0 + 0 + 30) / 3
        var g = new float[1];
        L1Kernels.Backward(g, [2f], [2f], 1, 1f);
        Assert.Equal(0f, g[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Tensor([1f], 1, 1).SmoothL1(new Tensor([0f], 1, 1), 0));
    }

    [Fact]
    public void Nll_IsTheMeanNegativeLogProbabilityOfTheLabel_AndItsGradientIsMinusOneOverN()
    {
        float[] logProbs = [-0.1f, -2.5f, -3f, -1.2f, -0.4f, -2f];
        Assert.Equal((0.1 + 2.0) / 2, NllKernels.Forward(logProbs, [0, 2], 2, 3), 1e-6);
        var d = new float[6];
        NllKernels.Backward(d, [0, 2], 2, 3, 0.5f);
        Assert.Equal([-0.5f, 0, 0, 0, 0, -0.5f], d);
        Assert.Throws<ArgumentOutOfRangeException>(() => NllKernels.Forward(logProbs, [0, 3], 2, 3));
    }
}
