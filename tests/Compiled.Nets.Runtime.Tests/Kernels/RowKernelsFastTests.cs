using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>
/// The vectorised softmax, layer-norm and cross-entropy kernels against the generic reference loops run in double,
/// on row widths around the 16-lane vector (1, 7, 15, 16, 17, 63, 65, 127, 129) and BERT's 768.
/// </summary>
public class RowKernelsFastTests
{
    public static TheoryData<int, int> Sizes()
    {
        var d = new TheoryData<int, int>();
        foreach (int cols in new[] { 1, 7, 15, 16, 17, 63, 65, 127, 129, 768 })
            foreach (int rows in new[] { 1, 3 }) d.Add(rows, cols);
        return d;
    }

    private static float[] Data(int n, int seed, float spread = 6f)
    {
        var r = new Rng((ulong)seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextFloat() - 0.5f) * spread).ToArray();
    }

    private static double[] D(float[] x) => x.Select(v => (double)v).ToArray();

    private static void Close(double[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void Softmax_ForwardAndBackward_MatchReference(int rows, int cols)
    {
        var x = Data(rows * cols, cols); x[0] += 40f; // one large logit: the max shift must keep exp finite
        var y = new float[x.Length]; var yRef = new double[x.Length];
        SoftmaxKernels.Forward(y, x, rows, cols);
        SoftmaxKernels.Reference.Forward<double>(yRef, D(x), rows, cols);
        Close(yRef, y, 2e-6, "y");

        var dy = Data(x.Length, 7 * cols, 2f);
        var dx = Data(x.Length, 9, 1f); var dxRef = D(dx); // accumulates into what is there
        SoftmaxKernels.Backward(dx, dy, y, rows, cols);
        SoftmaxKernels.Reference.Backward<double>(dxRef, D(dy), D(y), rows, cols);
        Close(dxRef, dx, 2e-6, "dx");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void LayerNorm_ForwardAndBackward_MatchReference(int rows, int features)
    {
        var x = Data(rows * features, features);
        for (int i = 0; i < x.Length; i++) x[i] += 100f; // a large mean: the two-pass variance must not cancel
        var gamma = Data(features, 2); var beta = Data(features, 3);
        var y = new float[x.Length]; var mean = new float[rows]; var rstd = new float[rows];
        var yRef = new double[x.Length]; var meanRef = new double[rows]; var rstdRef = new double[rows];
        LayerNormKernels.Forward(y, mean, rstd, x, gamma, beta, rows, features, 1e-5f);
        LayerNormKernels.Reference.Forward<double>(yRef, meanRef, rstdRef, D(x), D(gamma), D(beta), rows, features, 1e-5);
        Close(yRef, y, 2e-4, "y"); // |y| ≈ |γ|·|x̂| ≤ 10 with x̂ from float data around 100
        Close(meanRef, mean, 1e-6, "mean");
        Close(rstdRef, rstd, 1e-4, "rstd");

        var dy = Data(x.Length, 11, 2f);
        var dx = Data(x.Length, 12, 1f); var dg = Data(features, 13, 1f); var db = Data(features, 14, 1f);
        var dxRef = D(dx); var dgRef = D(dg); var dbRef = D(db);
        LayerNormKernels.Backward(dx, dg, db, dy, x, mean, rstd, gamma, rows, features);
        LayerNormKernels.Reference.Backward<double>(dxRef, dgRef, dbRef, D(dy), D(x), D(mean), D(rstd), D(gamma), rows, features);
        Close(dxRef, dx, 1e-3, "dx");
        Close(dgRef, dg, 1e-3, "dgamma");
        Close(dbRef, db, 1e-5, "dbeta");

        // Each of dx/dgamma/dbeta may be skipped.
        var dx2 = new float[x.Length];
        LayerNormKernels.Backward(dx2, default, default, dy, x, mean, rstd, gamma, rows, features);
        var dxOnly = new double[x.Length];
        LayerNormKernels.Reference.Backward<double>(dxOnly, default, default, D(dy), D(x), D(mean), D(rstd), D(gamma), rows, features);
        Close(dxOnly, dx2, 1e-3, "dx alone");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void CrossEntropy_WithAndWithoutSmoothing_MatchesReference(int rows, int classes)
    {
        var logits = Data(rows * classes, classes, 10f);
        var labels = Enumerable.Range(0, rows).Select(i => (i * 5 + 3) % classes).ToArray();
        foreach (float smoothing in new[] { 0f, 0.1f })
        {
            var probs = new float[logits.Length]; var probsRef = new double[logits.Length];
            float loss = CrossEntropyKernels.Forward(probs, logits, labels, rows, classes, smoothing);
            double lossRef = CrossEntropyKernels.Reference.Forward<double>(probsRef, D(logits), labels, rows, classes, smoothing);
            Assert.True(Math.Abs(lossRef - loss) <= 1e-5 * (1 + lossRef), $"loss {loss} vs {lossRef} (ε = {smoothing})");
            Close(probsRef, probs, 2e-6, "probs");
            var dl = Data(logits.Length, 21, 1f); var dlRef = D(dl);
            CrossEntropyKernels.Backward(dl, probs, labels, rows, classes, 1f / rows, smoothing);
            CrossEntropyKernels.Reference.Backward<double>(dlRef, D(probs), labels, rows, classes, 1.0 / rows, smoothing);
            Close(dlRef, dl, 1e-6, "dlogits");
        }
    }

    [Fact]
    public void CrossEntropy_LabelOutOfRange_NamesRowAndLabel()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            CrossEntropyKernels.Forward(new float[40], new float[40], new[] { 1, 2, 17, 0 }, 4, 10));
        Assert.Contains("Label 17 in row 2", ex.Message);
    }

    [Fact]
    public void ShortSpans_AreRejectedWithTheShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => SoftmaxKernels.Forward(new float[10], new float[9], 2, 5));
        Assert.Contains("[2, 5]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => LayerNormKernels.Forward(new float[10], default, default, new float[10], new float[4], new float[5], 2, 5, 1e-5f));
        Assert.Contains("gamma", ex.Message);
    }
}
