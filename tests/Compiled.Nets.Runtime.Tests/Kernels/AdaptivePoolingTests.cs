using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Adaptive average pooling against a double-precision reference of PyTorch's bins, its backward against the
/// forward (a linear map: ⟨dy, f(x)⟩ = ⟨f*(dy), x⟩ in double), and the ONNX matrix form against the kernel.</summary>
public class AdaptivePoolingTests
{
    private static double[] Reference(double[] x, int planes, int h, int w, int oh, int ow)
    {
        var y = new double[planes * oh * ow];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int r0 = (int)Math.Floor(i * h / (double)oh), r1 = (int)Math.Ceiling((i + 1) * h / (double)oh);
                    int c0 = (int)Math.Floor(j * w / (double)ow), c1 = (int)Math.Ceiling((j + 1) * w / (double)ow);
                    double sum = 0;
                    for (int r = r0; r < r1; r++) for (int c = c0; c < c1; c++) sum += x[p * h * w + r * w + c];
                    y[(p * oh + i) * ow + j] = sum / ((r1 - r0) * (c1 - c0));
                }
        return y;
    }

    [Theory]
    [InlineData(3, 7, 6, 1)]
    [InlineData(2, 7, 6, 3)]
    [InlineData(2, 5, 5, 5)]
    [InlineData(1, 4, 6, 7)] // more bins than rows: bins repeat rows
    [InlineData(4, 32, 32, 1)]
    public void Forward_AndBackward_MatchTheBinsInDouble(int planes, int h, int w, int n)
    {
        var r = new Rng(5);
        var x = Enumerable.Range(0, planes * h * w).Select(_ => r.NextFloat() * 2 - 1).ToArray();
        var dy = Enumerable.Range(0, planes * n * n).Select(_ => r.NextFloat() * 2 - 1).ToArray();
        var y = new float[planes * n * n];
        PoolingKernels.AdaptiveAvgPool2dForward(y, x, planes, h, w, n, n);
        var expected = Reference(x.Select(v => (double)v).ToArray(), planes, h, w, n, n);
        for (int i = 0; i < y.Length; i++) Assert.Equal(expected[i], y[i], 1e-5);

        // Backward accumulates into dx and is the forward's adjoint.
        var dx = Enumerable.Repeat(0.25f, x.Length).ToArray();
        PoolingKernels.AdaptiveAvgPool2dBackward(dx, dy, planes, h, w, n, n);
        double lhs = dy.Zip(expected).Sum(t => t.First * t.Second), rhs = dx.Zip(x).Sum(t => (t.First - 0.25) * t.Second);
        Assert.Equal(lhs, rhs, 1e-4);

        // The exported graph's matrix gives the kernel's result.
        var m = PoolingKernels.AdaptiveAvgPool2dMatrix(h, w, n, n);
        for (int p = 0; p < planes; p++)
            for (int k = 0; k < n * n; k++)
            {
                double v = 0;
                for (int q = 0; q < h * w; q++) v += x[p * h * w + q] * m[q * n * n + k];
                Assert.Equal(y[p * n * n + k], v, 1e-5);
            }
    }

    [Fact]
    public void EagerLayer_RejectsABadSizeAndRank()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveAvgPool2d(0));
        Assert.Throws<ArgumentException>(() => new Tensor(new float[6], 2, 3).AdaptiveAvgPool2d(1));
    }
}
