using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

public class PoolingFastTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1)]
    [InlineData(2, 7, 17, 13, 2, 2)]
    [InlineData(3, 65, 9, 11, 3, 2)]
    [InlineData(64, 64, 28, 28, 2, 2)]
    [InlineData(2, 3, 6, 70, 2, 2)]
    [InlineData(1, 2, 5, 33, 2, 2)]
    [InlineData(2, 2, 4, 64, 2, 2)]
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

    [Fact]
    public void FastMaxPool2x2_BreaksTiesAndNaNsInWindowOrder()
    {
        // Values from {-1, 0, 1} make ties common; several NaNs (also two in one window) and infinities.
        var g = new Pool2dGeometry(3, 5, 10, 12, 2, 2, 2, 2);
        var r = new Rng(8);
        var x = Enumerable.Range(0, 3 * g.InSize).Select(_ => (float)(r.NextInt(3) - 1)).ToArray();
        x[13] = float.NaN; x[14] = float.NaN; x[100] = float.PositiveInfinity; x[101] = float.NegativeInfinity; x[250] = float.NaN;
        var y = new float[3 * g.OutSize]; var arg = new int[y.Length];
        var yRef = new float[y.Length]; var argRef = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x, g);
        PoolingKernels.Reference.MaxPool2dForward<float>(yRef, argRef, x, g);
        Assert.Equal(yRef, y);
        Assert.Equal(argRef, arg);
    }

    [Theory]
    [InlineData(2, 3, 28, 28, 2, 2)]
    [InlineData(3, 2, 7, 7, 2, 2)]   // the last row and column belong to no window: zero when overwriting
    [InlineData(1, 2, 9, 8, 3, 2)]   // overlapping windows: one input can be the maximum of two
    [InlineData(64, 16, 14, 14, 2, 2)]
    [InlineData(2, 3, 5, 70, 2, 2)]  // 35 windows a row: two whole vectors and a masked tail; an odd last row
    [InlineData(1, 2, 4, 17, 2, 2)]  // 8 windows a row (the masked tail's second half is empty), an odd last column
    [InlineData(2, 2, 6, 66, 2, 2)]  // 33 windows: a one-window tail
    public void MaxPoolBackward_AccumulatesOrOverwrites_AsReference(int b, int c, int h, int w, int k, int s)
    {
        var g = new Pool2dGeometry(b, c, h, w, k, k, s, s);
        var r = new Rng(3);
        var x = Enumerable.Range(0, b * g.InSize).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var y = new float[b * g.OutSize]; var arg = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x, g);
        var dy = Enumerable.Range(0, y.Length).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var start = Enumerable.Range(0, x.Length).Select(_ => r.NextFloat()).ToArray();
        var expected = (float[])start.Clone();
        PoolingKernels.Reference.MaxPool2dBackward<float>(expected, dy, arg, g);
        var dx = (float[])start.Clone();
        PoolingKernels.MaxPool2dBackward(dx, dy, arg, g);
        Assert.Equal(expected, dx);

        var fromZero = new float[x.Length];
        PoolingKernels.Reference.MaxPool2dBackward<float>(fromZero, dy, arg, g);
        var overwritten = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        PoolingKernels.MaxPool2dBackward(overwritten, dy, arg, g, accumulate: false);
        Assert.Equal(fromZero, overwritten);
    }

    [Theory]
    [InlineData(3, 5, 28, 28, 2, 2)]
    [InlineData(2, 3, 7, 9, 3, 2)]
    public void MaxPoolFusedWithRelu_EqualsPoolThenRelu_ForwardAndBackward(int b, int c, int h, int w, int k, int s)
    {
        var g = new Pool2dGeometry(b, c, h, w, k, k, s, s);
        var r = new Rng(17);
        var x = Enumerable.Range(0, b * g.InSize).Select(_ => r.NextFloat() - 0.85f).ToArray(); // mostly negative: ReLU bites
        int n = b * g.OutSize;
        var pooled = new float[n]; var arg = new int[n];
        PoolingKernels.MaxPool2dForward(pooled, arg, x, g);
        var expected = pooled.Select(Elementwise.Relu).ToArray();
        var fused = new float[n]; var fusedArg = new int[n];
        PoolingKernels.MaxPool2dForward(fused, fusedArg, x, g, relu: true);
        Assert.Equal(expected, fused);
        Assert.Equal(arg, fusedArg);
        Assert.Contains(fused, v => v == 0f); // some windows were all negative

        var dy = Enumerable.Range(0, n).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var masked = dy.Select((d, i) => Elementwise.ReluGrad(fused[i], d)).ToArray();
        var dxRef = new float[x.Length];
        PoolingKernels.Reference.MaxPool2dBackward<float>(dxRef, masked, arg, g);
        var dx = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        PoolingKernels.MaxPool2dBackward(dx, dy, fusedArg, g, accumulate: false, reluOutput: fused);
        Assert.Equal(dxRef, dx);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MaxPool2x2Backward_HonoursAnArgmaxOutsideItsWindow(bool accumulate)
    {
        // The vectorised 2×2 path writes each window's gradient within the window; an argmax naming another input of
        // the plane (not one the forward writes, but a valid flat index) must still receive it, as in the reference.
        var g = new Pool2dGeometry(2, 3, 6, 40, 2, 2, 2, 2);
        var r = new Rng(23);
        var x = Enumerable.Range(0, 2 * g.InSize).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var y = new float[2 * g.OutSize]; var arg = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x, g);
        arg[5] = 239; arg[g.OutHeight * g.OutWidth + 21] = 0; arg[40] = -1; arg[41] = 3; // -1: no maximum (ignored)
        var dy = Enumerable.Range(0, y.Length).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var start = accumulate ? Enumerable.Range(0, x.Length).Select(_ => r.NextFloat()).ToArray() : new float[x.Length];
        var expected = (float[])start.Clone();
        PoolingKernels.Reference.MaxPool2dBackward<float>(expected, dy, arg, g);
        var dx = accumulate ? (float[])start.Clone() : Enumerable.Repeat(float.NaN, x.Length).ToArray();
        PoolingKernels.MaxPool2dBackward(dx, dy, arg, g, accumulate);
        Assert.Equal(expected, dx);
    }

    [Theory]
    [InlineData(64, 64, 28, 28, 2, true)]   // both cores (each sums half the planes), the ConvNet's conv1
    [InlineData(3, 5, 9, 11, 2, true)]      // one core, odd edges (inputs in no window)
    [InlineData(2, 3, 9, 8, 3, false)]      // overlapping windows: one input may take two gradients
    [InlineData(67, 5, 14, 14, 2, false)]   // both cores, an odd plane count (the halves split a sample)
    public void MaxPoolBackward_BiasGradient_IsTheChannelSumOfDx(int b, int c, int h, int w, int k, bool relu)
    {
        var g = new Pool2dGeometry(b, c, h, w, k, k, 2, 2);
        var r = new Rng(31);
        var x = Enumerable.Range(0, b * g.InSize).Select(_ => r.NextFloat() - 0.7f).ToArray();
        int n = b * g.OutSize;
        var y = new float[n]; var arg = new int[n];
        PoolingKernels.MaxPool2dForward(y, arg, x, g, relu);
        arg[1] = -1; // no maximum: no gradient, in dx or in the sum
        var dy = Enumerable.Range(0, n).Select(_ => r.NextFloat() - 0.5f).ToArray();
        var dx = new float[x.Length];
        var db = Enumerable.Range(0, c).Select(i => 0.25f * i).ToArray(); // accumulates (+=) like every gradient
        PoolingKernels.MaxPool2dBackward(dx, dy, arg, g, accumulate: false, relu ? y : default, db);

        var expectedDx = new float[x.Length];
        PoolingKernels.MaxPool2dBackward(expectedDx, dy, arg, g, accumulate: false, relu ? y : default);
        Assert.Equal(expectedDx, dx);
        int plane = g.InHeight * g.InWidth;
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0.25 * ch;
            for (int s = 0; s < b; s++)
                for (int i = 0; i < plane; i++) sum += dx[(s * c + ch) * plane + i];
            Assert.True(Math.Abs(sum - db[ch]) <= 1e-4 * (1 + Math.Abs(sum)), $"channel {ch}: Σ dx {sum} vs bias gradient {db[ch]}");
        }
        Assert.Contains(dx, v => v != 0f);

        // The same again gives bit-identical sums (fixed halves, fixed order), and a wrong length is refused.
        var again = Enumerable.Range(0, c).Select(i => 0.25f * i).ToArray();
        PoolingKernels.MaxPool2dBackward(new float[x.Length], dy, arg, g, accumulate: false, relu ? y : default, again);
        Assert.Equal(db, again);
        var ex = Assert.Throws<ArgumentException>(() => PoolingKernels.MaxPool2dBackward(new float[x.Length], dy, arg, g, false, default, new float[c + 1]));
        Assert.Contains("bias gradient", ex.Message);
    }
}
