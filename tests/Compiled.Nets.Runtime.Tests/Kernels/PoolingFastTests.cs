using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

public class PoolingFastTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1)]
    [InlineData(2, 7, 17, 13, 2, 2)]
    [InlineData(3, 65, 9, 11, 3, 2)]
    [InlineData(64, 64, 28, 28, 2, 2)]
    public void FastMaxPool_MatchesReference_IncludingArgmaxAndNaN(int b, int c, int h, int w, int k, int s)
    {
        var g = new Pool2dGeometry(b, c, h, w, k, k, s, s);
        var r = new Rng(5);
        var x = Enumerable.Range(0, b * g.InSize).Select(_ => r.NextFloat() - 0.5f).ToArray();
        x[x.Length / 3] = float.NaN;
        var y = new float[b * g.OutSize]; var arg = new int[y.Length];
        var yRef = new float[y.Length]; var argRef = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x, g);
        PoolingKernels.Reference.MaxPool2dForward<float>(yRef, argRef, x, g);
        Assert.Equal(yRef, y);
        Assert.Equal(argRef, arg);
    }
}
