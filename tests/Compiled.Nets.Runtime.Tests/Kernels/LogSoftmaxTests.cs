using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>log-softmax against the formula in double, its backward against finite differences of ⟨g, log softmax(x)⟩ in double.</summary>
public class LogSoftmaxTests
{
    private static double[] Exact(float[] x, int rows, int cols)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int k = 0; k < cols; k++) max = Math.Max(max, x[r * cols + k]);
            double sum = 0;
            for (int k = 0; k < cols; k++) sum += Math.Exp(x[r * cols + k] - max);
            for (int k = 0; k < cols; k++) y[r * cols + k] = x[r * cols + k] - max - Math.Log(sum);
        }
        return y;
    }

    [Theory]
    [InlineData(3, 7)]
    [InlineData(2, 37)]  // a vector body and a tail
    [InlineData(1, 1)]
    public void ForwardAndBackward_MatchDoublePrecision(int rows, int cols)
    {
        var r = new Rng(51);
        var x = Enumerable.Range(0, rows * cols).Select(_ => (r.NextFloat() * 2 - 1) * 6).ToArray();
        var g = Enumerable.Range(0, rows * cols).Select(_ => r.NextFloat() * 2 - 1).ToArray();
        var y = new float[x.Length];
        LogSoftmaxKernels.Forward(y, x, rows, cols);
        var exact = Exact(x, rows, cols);
        for (int i = 0; i < y.Length; i++) Assert.Equal(exact[i], y[i], 1e-5);

        var dx = Enumerable.Repeat(0.25f, x.Length).ToArray();
        LogSoftmaxKernels.Backward(dx, g, y, rows, cols);
        const double h = 1e-3;
        for (int i = 0; i < x.Length; i++)
        {
            var plus = (float[])x.Clone(); plus[i] += (float)h;
            var minus = (float[])x.Clone(); minus[i] -= (float)h;
            double numeric = (Exact(plus, rows, cols).Zip(g, (a, b) => a * b).Sum() - Exact(minus, rows, cols).Zip(g, (a, b) => a * b).Sum()) / (2 * h);
            Assert.True(Math.Abs(0.25 + numeric - dx[i]) < 1e-4, $"dx[{i}] = {dx[i] - 0.25}, finite difference {numeric}");
        }
    }

    [Fact]
    public void LargeLogits_StayFinite()
    {
        var y = new float[3];
        LogSoftmaxKernels.Forward(y, [1000f, 0f, -1000f], 1, 3);
        Assert.Equal(0f, y[0], 1e-6f);
        Assert.Equal(-1000f, y[1], 1e-3f);
        Assert.True(float.IsFinite(y[2]));
    }
}
