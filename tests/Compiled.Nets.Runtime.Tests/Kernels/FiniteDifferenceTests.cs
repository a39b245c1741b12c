using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Every op's backward against finite differences of its forward, in double precision, on odd shapes.</summary>
public class FiniteDifferenceTests
{
    public static TheoryData<int, int, int, int, int, int, int, int, int> ConvCases() => new()
    {
        // batch, C, H, W, O, k, stride, pad, dilation
        { 1, 1, 5, 5, 1, 3, 1, 0, 1 },
        { 2, 3, 7, 6, 4, 3, 1, 1, 1 },
        { 1, 2, 9, 7, 3, 3, 2, 2, 2 },
        { 2, 2, 6, 5, 3, 2, 2, 0, 1 },
    };

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void Conv2d(int b, int c, int h, int w, int o, int k, int s, int p, int d)
    {
        var g = new Conv2dGeometry(b, c, h, w, o, k, k, s, s, p, p, d, d);
        var x = GradCheck.Random(b * g.InSize, 1); var wt = GradCheck.Random(g.WeightSize, 2); var u = GradCheck.Random(b * g.OutSize, 3);
        var y = new double[u.Length];
        double Loss() { Conv2dKernels.Reference.Forward<double>(y, x, wt, g); return GradCheck.Dot(u, y); }
        var dx = new double[x.Length]; var dw = new double[wt.Length];
        Conv2dKernels.Reference.Backward<double>(dx, dw, u, x, wt, g);
        GradCheck.Check(x, Loss, dx, "conv dx");
        GradCheck.Check(wt, Loss, dw, "conv dw");
    }

    /// <summary>The float path also on batches that fill several im2col chunks per core, partly (and the first
    /// conv's transposed weight-gradient orientation, Q = C·k² smaller than O).</summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> FloatConvCases()
    {
        var d = ConvCases();
        d.Add(37, 3, 9, 9, 8, 3, 1, 1, 1);
        d.Add(9, 1, 12, 10, 16, 3, 1, 1, 1);
        d.Add(6, 2, 11, 9, 5, 3, 2, 1, 1);
        d.Add(70, 1, 14, 14, 12, 3, 1, 1, 1);
        // "Same" convolutions (the shifted-plane im2col/col2im path): 5×5 pad 2, 1×1, a 1×1 image, a wide image.
        d.Add(3, 2, 7, 6, 4, 5, 1, 2, 1);
        d.Add(2, 3, 5, 5, 4, 1, 1, 0, 1);
        d.Add(4, 5, 1, 1, 3, 3, 1, 1, 1);
        d.Add(9, 4, 5, 13, 6, 3, 1, 1, 1);
        // Few input channels (the direct kernel): padding 2 with a 42-wide output (three row vectors), odd channel counts.
        d.Add(3, 2, 6, 40, 5, 3, 1, 2, 1);
        d.Add(2, 4, 17, 16, 7, 3, 1, 0, 1);
        // One image (on one core), output channels not a multiple of four, rows of 21 and of 6 columns.
        d.Add(1, 3, 9, 21, 10, 3, 1, 1, 1);
        d.Add(1, 2, 7, 6, 9, 3, 1, 1, 1);
        foreach (var c in WinogradCases()) d.Add((int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], 3, 1, (int)c[5], 1);
        return d;
    }

    /// <summary>Shapes whose forward and input gradient run as Winograd F(2×2, 3×3): odd sizes (a last tile row and
    /// column half outside), channel counts that leave a partial 6-row panel, padding 0/1/2 (so the input gradient's
    /// 2, 1, 0), an image 17 tiles wide (segments of 7, 7, 3), partial last chunks (1, 38, 50 and 8 tiles), the ConvNet's
    /// conv2, and single images.</summary>
    public static TheoryData<int, int, int, int, int, int> WinogradCases() => new()
    {
        // batch, C, H, W, O, pad
        { 11, 16, 13, 9, 17, 1 },
        { 6, 19, 16, 16, 23, 0 },
        { 7, 20, 10, 12, 16, 2 },
        { 6, 16, 6, 33, 18, 1 },
        { 8, 64, 14, 14, 128, 1 },
        // One image: a single chunk, shared by the two cores by output-channel blocks; 49 tiles (the 48-column kernel
        // and one more), 35, exactly 48, 51 (three more) and 52 (the 64-column kernel again).
        { 1, 64, 14, 14, 128, 1 },
        { 1, 16, 13, 9, 17, 1 },
        { 1, 16, 12, 16, 20, 1 },
        { 1, 17, 6, 34, 19, 1 },
        { 1, 16, 8, 26, 18, 1 },
    };

    [Theory]
    [InlineData(2, 3, 7, 6, 4, 1)]
    [InlineData(3, 2, 6, 40, 5, 2)]
    [InlineData(1, 1, 28, 28, 64, 1)]
    public void Conv2d_FewInputChannels_TakeTheDirectPath(int b, int c, int h, int w, int o, int p)
    {
        Assert.Equal(Gemm.UsesAvx512, Conv2dKernels.UsesDirect(new Conv2dGeometry(b, c, h, w, o, 3, 3, 1, 1, p, p, 1, 1)));
        Assert.False(Conv2dKernels.UsesDirect(new Conv2dGeometry(b, 5, h, w, o, 3, 3, 1, 1, p, p, 1, 1)));
        Assert.False(Conv2dKernels.UsesDirect(new Conv2dGeometry(b, c, h, w, o, 3, 3, 2, 2, p, p, 1, 1)));
    }

    [Theory]
    [MemberData(nameof(WinogradCases))]
    public void Conv2d_WinogradCases_TakeTheWinogradPath(int b, int c, int h, int w, int o, int p)
    {
        // Winograd runs on the AVX-512 path only (its micro-kernel).
        Assert.Equal(Gemm.UsesAvx512, Conv2dKernels.UsesWinograd(new Conv2dGeometry(b, c, h, w, o, 3, 3, 1, 1, p, p, 1, 1)));
        // Not for strides, dilations, other kernels or thin layers (the ConvNet's first: one input channel).
        Assert.False(Conv2dKernels.UsesWinograd(new Conv2dGeometry(b, c, h, w, o, 3, 3, 2, 2, p, p, 1, 1)));
        Assert.False(Conv2dKernels.UsesWinograd(new Conv2dGeometry(b, c, h, w, o, 3, 3, 1, 1, p, p, 2, 2)));
        Assert.False(Conv2dKernels.UsesWinograd(new Conv2dGeometry(b, c, h, w, o, 5, 5, 1, 1, p, p, 1, 1)));
        Assert.False(Conv2dKernels.UsesWinograd(new Conv2dGeometry(b, 1, h, w, o, 3, 3, 1, 1, p, p, 1, 1)));
    }

    [Theory]
    [MemberData(nameof(FloatConvCases))]
    public void Conv2d_FloatIm2ColGemm_MatchesDefinition(int b, int c, int h, int w, int o, int k, int s, int p, int d)
    {
        var g = new Conv2dGeometry(b, c, h, w, o, k, k, s, s, p, p, d, d);
        var x = GradCheck.Random(b * g.InSize, 1).Select(v => (float)v).ToArray();
        var wt = GradCheck.Random(g.WeightSize, 2).Select(v => (float)v).ToArray();
        var dy = GradCheck.Random(b * g.OutSize, 3).Select(v => (float)v).ToArray();
        var scratch = new float[Conv2dKernels.ScratchSize(g)];
        var y = new float[dy.Length]; var yRef = new float[dy.Length];
        Conv2dKernels.Forward(y, x, wt, g, scratch);
        Conv2dKernels.Reference.Forward<float>(yRef, x, wt, g);
        Close(yRef, y, "y");
        var dx = new float[x.Length]; var dw = new float[wt.Length]; var dxRef = new float[x.Length]; var dwRef = new float[wt.Length];
        Conv2dKernels.Backward(dx, dw, dy, x, wt, g, scratch);
        Conv2dKernels.Reference.Backward<float>(dxRef, dwRef, dy, x, wt, g);
        Close(dxRef, dx, "dx"); Close(dwRef, dw, "dw");

        // Overwrite mode: whatever dx held (NaN here) is replaced, not added to.
        var dx2 = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        Conv2dKernels.Backward(dx2, default, dy, x, wt, g, scratch, accumulateDx: false);
        Close(dxRef, dx2, "dx (overwritten)");
    }

    [Fact]
    public void LinearFloat_OverwriteModes_ReplaceWhatTheGradientsHeld()
    {
        const int n = 5, i = 19, o = 7;
        var x = GradCheck.Random(n * i, 1).Select(v => (float)v).ToArray();
        var w = GradCheck.Random(o * i, 2).Select(v => (float)v).ToArray();
        var dy = GradCheck.Random(n * o, 3).Select(v => (float)v).ToArray();
        var dxRef = new float[x.Length]; var dwRef = new float[w.Length];
        LinearKernels.Reference.Backward<float>(dxRef, dwRef, dy, x, w, n, i, o);
        var dx = Enumerable.Repeat(float.NaN, x.Length).ToArray(); var dw = Enumerable.Repeat(float.NaN, w.Length).ToArray();
        LinearKernels.Backward(dx, dw, dy, x, w, n, i, o, accumulateDx: false, accumulateDw: false);
        Close(dxRef, dx, "dx"); Close(dwRef, dw, "dw");
        // The default accumulates.
        LinearKernels.Backward(dx, dw, dy, x, w, n, i, o);
        Close(dxRef.Select(v => 2 * v).ToArray(), dx, "2·dx"); Close(dwRef.Select(v => 2 * v).ToArray(), dw, "2·dw");
    }

    internal static void Close(float[] expected, float[] actual, string what, float tol = 1e-4f)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"{what}[{i}]: {expected[i]} vs {actual[i]}");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 5)]
    [InlineData(4, 17, 9)]
    public void Linear(int n, int i, int o)
    {
        var x = GradCheck.Random(n * i, 1); var w = GradCheck.Random(o * i, 2); var u = GradCheck.Random(n * o, 3);
        var y = new double[n * o];
        double Loss() { LinearKernels.Reference.Forward<double>(y, x, w, n, i, o); return GradCheck.Dot(u, y); }
        var dx = new double[x.Length]; var dw = new double[w.Length];
        LinearKernels.Reference.Backward<double>(dx, dw, u, x, w, n, i, o);
        GradCheck.Check(x, Loss, dx, "linear dx");
        GradCheck.Check(w, Loss, dw, "linear dw");
    }

    [Theory]
    [InlineData(2, 2, 2, 0)]
    [InlineData(3, 2, 1, 1)]
    [InlineData(3, 3, 2, 1)]
    public void Pooling(int k, int s, int p, int unused)
    {
        _ = unused;
        var g = new Pool2dGeometry(2, 3, 7, 6, k, k, s, s, Math.Min(p, k / 2), Math.Min(p, k / 2));
        var x = GradCheck.Random(2 * g.InSize, 4); var u = GradCheck.Random(2 * g.OutSize, 5);
        var y = new double[u.Length]; var arg = new int[u.Length];
        double MaxLoss() { PoolingKernels.Reference.MaxPool2dForward<double>(y, arg, x, g); return GradCheck.Dot(u, y); }
        MaxLoss();
        var dx = new double[x.Length];
        PoolingKernels.Reference.MaxPool2dBackward<double>(dx, u, arg, g);
        GradCheck.Check(x, MaxLoss, dx, "maxpool dx");
        double AvgLoss() { PoolingKernels.Reference.AvgPool2dForward<double>(y, x, g); return GradCheck.Dot(u, y); }
        var da = new double[x.Length];
        PoolingKernels.Reference.AvgPool2dBackward<double>(da, u, g);
        GradCheck.Check(x, AvgLoss, da, "avgpool dx");
    }

    [Fact]
    public void BatchNorm_Training()
    {
        int b = 3, c = 2, s = 5;
        var x = GradCheck.Random(b * c * s, 1); var gamma = GradCheck.Random(c, 2); var beta = GradCheck.Random(c, 3); var u = GradCheck.Random(x.Length, 4);
        var y = new double[x.Length]; var mean = new double[c]; var inv = new double[c];
        double Loss()
        {
            var rm = new double[c]; var rv = new double[c];
            BatchNormKernels.Reference.ForwardTraining<double>(y, mean, inv, rm, rv, x, gamma, beta, b, c, s, 1e-5, 0.1);
            return GradCheck.Dot(u, y);
        }
        Loss();
        var dx = new double[x.Length]; var dg = new double[c]; var db = new double[c];
        BatchNormKernels.Reference.Backward<double>(dx, dg, db, u, x, mean, inv, gamma, b, c, s);
        GradCheck.Check(x, Loss, dx, "bn dx");
        GradCheck.Check(gamma, Loss, dg, "bn dgamma");
        GradCheck.Check(beta, Loss, db, "bn dbeta");
    }

    [Fact]
    public void BatchNorm_RunningStatistics_AsPyTorch()
    {
        // Running var uses the unbiased variance; momentum 0.1 from (0, 1).
        var x = new double[] { 1, 2, 3, 4 }; // B = 4, C = 1, S = 1
        var rm = new double[] { 0 }; var rv = new double[] { 1 };
        BatchNormKernels.Reference.ForwardTraining<double>(new double[4], new double[1], new double[1], rm, rv, x, new double[] { 1 }, new double[] { 0 }, 4, 1, 1, 1e-5, 0.1);
        Assert.Equal(0.25, rm[0], 12);
        Assert.Equal(0.9 + 0.1 * (5.0 / 3.0), rv[0], 12);
    }

    [Fact]
    public void LayerNorm()
    {
        int n = 3, f = 7;
        var x = GradCheck.Random(n * f, 1); var gamma = GradCheck.Random(f, 2); var beta = GradCheck.Random(f, 3); var u = GradCheck.Random(x.Length, 4);
        var y = new double[x.Length]; var mean = new double[n]; var rstd = new double[n];
        double Loss() { LayerNormKernels.Reference.Forward<double>(y, mean, rstd, x, gamma, beta, n, f, 1e-5); return GradCheck.Dot(u, y); }
        Loss();
        var dx = new double[x.Length]; var dg = new double[f]; var db = new double[f];
        LayerNormKernels.Reference.Backward<double>(dx, dg, db, u, x, mean, rstd, gamma, n, f);
        GradCheck.Check(x, Loss, dx, "ln dx");
        GradCheck.Check(gamma, Loss, dg, "ln dgamma");
        GradCheck.Check(beta, Loss, db, "ln dbeta");
    }

    [Theory]
    [InlineData(2, 5, 3, false)]  // a middle dimension, summed
    [InlineData(4, 6, 1, true)]   // the last dimension, averaged
    public void SumAndMeanAlongADimension(int outer, int n, int inner, bool mean)
    {
        double scale = mean ? 1.0 / n : 1.0;
        var x = GradCheck.Random(outer * n * inner, 3); var u = GradCheck.Random(outer * inner, 4); var y = new double[outer * inner];
        double Loss() { ReduceKernels.Reference.Forward<double>(y, x, outer, n, inner, scale); return GradCheck.Dot(u, y); }
        Loss();
        var dx = new double[x.Length];
        ReduceKernels.Reference.Backward<double>(dx, u, outer, n, inner, scale);
        GradCheck.Check(x, Loss, dx, "reduce dx");
        // The float kernel (TensorPrimitives rows, a single sum for inner = 1) against the reference.
        var xf = x.Select(v => (float)v).ToArray(); var uf = u.Select(v => (float)v).ToArray();
        var yf = new float[y.Length]; var dxf = Enumerable.Repeat(0.25f, x.Length).ToArray();
        ReduceKernels.Forward(yf, xf, outer, n, inner, (float)scale);
        ReduceKernels.Backward(dxf, uf, outer, n, inner, (float)scale); // adds to what the gradient held
        Close(y.Select(v => (float)v).ToArray(), yf, "reduce y", 1e-5f);
        Close(dx.Select(v => (float)v + 0.25f).ToArray(), dxf, "reduce dx (float)", 1e-5f);
    }

    [Fact]
    public void Softmax()
    {
        int n = 3, k = 5;
        var x = GradCheck.Random(n * k, 1, 3); var u = GradCheck.Random(x.Length, 2); var y = new double[x.Length];
        double Loss() { SoftmaxKernels.Reference.Forward<double>(y, x, n, k); return GradCheck.Dot(u, y); }
        Loss();
        var dx = new double[x.Length];
        SoftmaxKernels.Reference.Backward<double>(dx, u, y, n, k);
        GradCheck.Check(x, Loss, dx, "softmax dx");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void CrossEntropy(double smoothing)
    {
        int n = 4, k = 6;
        var x = GradCheck.Random(n * k, 1, 3); var labels = new[] { 0, 5, 2, 2 }; var probs = new double[x.Length];
        double Loss() => CrossEntropyKernels.Reference.Forward<double>(probs, x, labels, n, k, smoothing);
        // The float return loses precision; recompute the loss in double from the saved probabilities.
        double LossD()
        {
            Loss();
            double total = 0;
            for (int r = 0; r < n; r++)
            {
                double mean = 0;
                for (int c = 0; c < k; c++) mean -= Math.Log(probs[r * k + c]);
                total += (1 - smoothing) * -Math.Log(probs[r * k + labels[r]]) + smoothing * mean / k;
            }
            return total / n;
        }
        LossD();
        var dx = new double[x.Length];
        CrossEntropyKernels.Reference.Backward<double>(dx, probs, labels, n, k, 1.0 / n, smoothing);
        GradCheck.Check(x, LossD, dx, "ce dlogits");
    }

    [Fact]
    public void Embedding()
    {
        var table = GradCheck.Random(5 * 3, 1); var ids = new[] { 4, 0, 4, 2 }; var u = GradCheck.Random(4 * 3, 2); var y = new double[12];
        double Loss() { EmbeddingKernels.Reference.Forward<double>(y, ids, table, 4, 5, 3); return GradCheck.Dot(u, y); }
        var dt = new double[table.Length];
        EmbeddingKernels.Reference.Backward<double>(dt, u, ids, 4, 3);
        GradCheck.Check(table, Loss, dt, "embedding dtable");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingKernels.Forward(new float[3], new[] { 7 }, new float[15], 1, 5, 3));
        Assert.Contains("Token id 7 at position 0", ex.Message);
    }

    [Fact]
    public void CrossEntropy_LabelOutOfRange_NamesRowAndLabel()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropyKernels.Forward(new float[6], new float[6], new[] { 1, 3 }, 2, 3));
        Assert.Contains("Label 3 in row 1", ex.Message);
    }
}
