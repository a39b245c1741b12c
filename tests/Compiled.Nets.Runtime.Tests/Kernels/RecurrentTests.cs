using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>
/// LSTM and GRU kernels: the float forward against the double definition, and the float backward through time against
/// finite differences of the definition, in both directions, writing into a column slice of a wider output, with
/// masks (right padding and a gap) and without biases. PyTorch parity is in the interop tests.
/// </summary>
public class RecurrentTests
{
    // Sample 0 real everywhere; sample 1 right-padded; sample 2 has a padded gap and padding at both ends.
    private static int[] Mask(int batch, int seq)
    {
        var m = new int[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
                m[b * seq + t] = b switch { 0 => 1, 1 => t < Math.Max(1, seq - 2) ? 1 : 0, _ => t > 0 && t != seq / 2 && t < seq - 1 ? 1 : 0 };
        return m;
    }

    private static float[] F(double[] x) => x.Select(v => (float)v).ToArray();

    [Theory]
    [InlineData(true, 1, 1, 2, 3, false, false, true)]
    [InlineData(true, 2, 5, 3, 4, false, true, true)]
    [InlineData(true, 3, 6, 2, 3, true, true, true)]
    [InlineData(true, 2, 4, 3, 2, true, false, false)]
    [InlineData(false, 1, 1, 2, 3, false, false, true)]
    [InlineData(false, 2, 5, 3, 4, false, true, true)]
    [InlineData(false, 3, 6, 2, 3, true, true, true)]
    [InlineData(false, 2, 4, 3, 2, true, false, false)]
    public void FloatKernels_MatchTheDefinition_AndItsFiniteDifferences(bool lstm, int batch, int seq, int input, int hidden, bool reverse, bool masked, bool bias)
    {
        int gates = lstm ? 4 : 3, rows = batch * seq, width = 2 * hidden + 1, offset = reverse ? hidden + 1 : 1;
        var x = GradCheck.Random(rows * input, 1);
        var wIh = GradCheck.Random(gates * hidden * input, 2, 0.7);
        var wHh = GradCheck.Random(gates * hidden * hidden, 3, 0.7);
        var bIh = bias ? GradCheck.Random(gates * hidden, 4, 0.5) : [];
        var bHh = bias ? GradCheck.Random(gates * hidden, 5, 0.5) : [];
        var u = GradCheck.Random(rows * width, 6); // loss = Σ u ⊙ y over this direction's columns
        var mask = masked ? Mask(batch, seq) : [];
        double[] Definition()
        {
            var y = new double[rows * width];
            if (lstm) RecurrentKernels.Reference.LstmForward<double>(y, width, offset, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse);
            else RecurrentKernels.Reference.GruForward<double>(y, width, offset, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse);
            return y;
        }
        double Loss() => GradCheck.Dot(u, Definition());

        // Forward: this direction's columns as the definition's, the other columns untouched.
        var expected = Definition();
        var y = Enumerable.Repeat(7f, rows * width).ToArray();
        var (g, st, ex) = (new float[rows * gates * hidden], new float[rows * hidden], new float[rows * hidden]);
        var carry = new float[RecurrentKernels.CarrySize(batch, hidden)];
        var (xf, wIhF, wHhF, bIhF, bHhF) = (F(x), F(wIh), F(wHh), F(bIh), F(bHh));
        if (lstm) RecurrentKernels.LstmForward(y, width, offset, g, st, ex, xf, wIhF, wHhF, bIhF, bHhF, mask, batch, seq, input, hidden, reverse);
        else RecurrentKernels.GruForward(y, width, offset, g, st, ex, xf, wIhF, wHhF, bIhF, bHhF, mask, batch, seq, input, hidden, reverse, carry);
        for (int i = 0; i < y.Length; i++)
        {
            int column = i % width;
            if (column >= offset && column < offset + hidden) Assert.True(Math.Abs(expected[i] - y[i]) < 1e-5, $"y[{i}]: {y[i]} vs {expected[i]}");
            else Assert.Equal(7f, y[i]);
        }
        if (masked) Assert.Contains(y.Where((_, i) => i % width == offset), v => v == 0f); // padded positions output zeros

        // Backward: every gradient against central differences of the definition (float kernels: 1e-4 relative).
        var dx = new float[x.Length]; var dWih = new float[wIh.Length]; var dWhh = new float[wHh.Length];
        var dBih = new float[bIh.Length]; var dBhh = new float[bHh.Length];
        if (lstm) RecurrentKernels.LstmBackward(dx, dWih, dWhh, dBih, dBhh, F(u), width, offset, g, st, ex, xf, wIhF, wHhF, mask, batch, seq, input, hidden, reverse, carry);
        else RecurrentKernels.GruBackward(dx, dWih, dWhh, dBih, dBhh, F(u), width, offset, g, st, ex, xf, wIhF, wHhF, mask, batch, seq, input, hidden, reverse, carry);
        static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
        GradCheck.Check(x, Loss, D(dx), "dx", tol: 1e-4);
        GradCheck.Check(wIh, Loss, D(dWih), "dW_ih", tol: 1e-4);
        if (seq > 1) GradCheck.Check(wHh, Loss, D(dWhh), "dW_hh", tol: 1e-4);
        if (bias)
        {
            GradCheck.Check(bIh, Loss, D(dBih), "db_ih", tol: 1e-4);
            GradCheck.Check(bHh, Loss, D(dBhh), "db_hh", tol: 1e-4);
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void TimeLoops_OverTwoHalvesOfTheBatchOnTwoCores_MatchTheDefinitionAndSingleSamples(bool lstm, bool reverse)
    {
        // Big enough (B·T·H ≥ 16384) for the time loop to run as two halves of the batch, an odd batch, with padding.
        const int batch = 5, seq = 40, input = 8, hidden = 96;
        int gates = lstm ? 4 : 3, rows = batch * seq, width = 2 * hidden, offset = reverse ? hidden : 0;
        var x = GradCheck.Random(rows * input, 11);
        var wIh = GradCheck.Random(gates * hidden * input, 12, 0.3);
        var wHh = GradCheck.Random(gates * hidden * hidden, 13, 0.1);
        var bIh = GradCheck.Random(gates * hidden, 14, 0.3);
        var bHh = GradCheck.Random(gates * hidden, 15, 0.3);
        var mask = Mask(batch, seq);
        var expected = new double[rows * width];
        if (lstm) RecurrentKernels.Reference.LstmForward<double>(expected, width, offset, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse);
        else RecurrentKernels.Reference.GruForward<double>(expected, width, offset, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, hidden, reverse);
        var y = new float[rows * width];
        var (g, st, ex) = (new float[rows * gates * hidden], new float[rows * hidden], new float[rows * hidden]);
        var carry = new float[RecurrentKernels.CarrySize(batch, hidden)];
        if (lstm) RecurrentKernels.LstmForward(y, width, offset, g, st, ex, F(x), F(wIh), F(wHh), F(bIh), F(bHh), mask, batch, seq, input, hidden, reverse);
        else RecurrentKernels.GruForward(y, width, offset, g, st, ex, F(x), F(wIh), F(wHh), F(bIh), F(bHh), mask, batch, seq, input, hidden, reverse, carry);
        for (int i = 0; i < y.Length; i++)
            if (i % width >= offset && i % width < offset + hidden) Assert.True(Math.Abs(expected[i] - y[i]) < 2e-5, $"y[{i}]: {y[i]} vs {expected[i]}");

        // Backward over the halves: each sample's input gradient is what that sample alone gives (batch 1 runs on one
        // core), and the weights' gradients their sum.
        var dy = F(GradCheck.Random(rows * width, 16));
        float[] dx = new float[x.Length], dWhh = new float[wHh.Length], dBhh = new float[bHh.Length];
        void Backward(float[] gx, float[] gw, float[] gb, float[] yg, float[] sx, float[] sg, float[] ss, float[] se, int[] m, int n)
        {
            var c = new float[RecurrentKernels.CarrySize(n, hidden)];
            if (lstm) RecurrentKernels.LstmBackward(gx, default, gw, default, gb, yg, width, offset, sg, ss, se, sx, F(wIh), F(wHh), m, n, seq, input, hidden, reverse, c);
            else RecurrentKernels.GruBackward(gx, default, gw, default, gb, yg, width, offset, sg, ss, se, sx, F(wIh), F(wHh), m, n, seq, input, hidden, reverse, c);
        }
        Backward(dx, dWhh, dBhh, dy, F(x), g, st, ex, mask, batch);
        float[] sumW = new float[wHh.Length], sumB = new float[bHh.Length];
        for (int b = 0; b < batch; b++)
        {
            var xs = F(x).AsSpan(b * seq * input, seq * input).ToArray();
            var ms = mask.AsSpan(b * seq, seq).ToArray();
            var (g1, s1, e1) = (new float[seq * gates * hidden], new float[seq * hidden], new float[seq * hidden]);
            var one = new float[seq * width];
            if (lstm) RecurrentKernels.LstmForward(one, width, offset, g1, s1, e1, xs, F(wIh), F(wHh), F(bIh), F(bHh), ms, 1, seq, input, hidden, reverse);
            else RecurrentKernels.GruForward(one, width, offset, g1, s1, e1, xs, F(wIh), F(wHh), F(bIh), F(bHh), ms, 1, seq, input, hidden, reverse, new float[RecurrentKernels.CarrySize(1, hidden)]);
            var dxs = new float[xs.Length];
            Backward(dxs, sumW, sumB, dy.AsSpan(b * seq * width, seq * width).ToArray(), xs, g1, s1, e1, ms, 1);
            for (int i = 0; i < dxs.Length; i++) Assert.True(Math.Abs(dxs[i] - dx[b * seq * input + i]) < 1e-5, $"dx of sample {b} [{i}]: {dx[b * seq * input + i]} vs alone {dxs[i]}");
        }
        for (int i = 0; i < sumW.Length; i++) Assert.True(Math.Abs(sumW[i] - dWhh[i]) < 1e-4 * Math.Max(1, Math.Abs(sumW[i])), $"dW_hh[{i}]: {dWhh[i]} vs summed {sumW[i]}");
        for (int i = 0; i < sumB.Length; i++) Assert.True(Math.Abs(sumB[i] - dBhh[i]) < 1e-4 * Math.Max(1, Math.Abs(sumB[i])), $"db_hh[{i}]: {dBhh[i]} vs summed {sumB[i]}");
    }

    [Fact]
    public void Backward_AddsToTheGradientsItIsGiven_AndSkipsEmptyOnes()
    {
        // dx is shared by a bidirectional layer's two directions and W's gradients accumulate over micro-batches.
        const int batch = 2, seq = 3, input = 2, hidden = 3;
        var x = F(GradCheck.Random(batch * seq * input, 1)); var wIh = F(GradCheck.Random(12 * input, 2)); var wHh = F(GradCheck.Random(12 * hidden, 3));
        var dy = F(GradCheck.Random(batch * seq * hidden, 4));
        float[] Run(float[] dx, float[] dWih)
        {
            var (g, st, c) = (new float[batch * seq * 12], new float[batch * seq * hidden], new float[batch * seq * hidden]);
            RecurrentKernels.LstmForward(new float[batch * seq * hidden], hidden, 0, g, st, c, x, wIh, wHh, default, default, default, batch, seq, input, hidden, false);
            RecurrentKernels.LstmBackward(dx, dWih, default, default, default, dy, hidden, 0, g, st, c, x, wIh, wHh, default, batch, seq, input, hidden, false, new float[RecurrentKernels.CarrySize(batch, hidden)]);
            return dx;
        }
        var once = Run(new float[x.Length], new float[wIh.Length]);
        var twice = Run(Run(new float[x.Length], new float[wIh.Length]), new float[wIh.Length]);
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], twice[i], 1e-5f);
        Assert.Contains(once, v => v != 0);
        var onlyWeights = new float[wIh.Length];
        Run([], onlyWeights);
        Assert.Contains(onlyWeights, v => v != 0);
    }

    [Fact]
    public void WrongSizes_NameTheBuffer()
    {
        var ex = Assert.Throws<ArgumentException>(() => RecurrentKernels.LstmForward(new float[24], 4, 0, new float[90], new float[24], new float[24], new float[12], new float[16 * 2], new float[64], default, default, default, 2, 3, 2, 4, false));
        Assert.Equal("LSTM: the gates buffer is 90 values long; 96 needed.", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => RecurrentKernels.GruForward(new float[24], 4, 0, new float[72], new float[24], new float[24], new float[12], new float[12 * 2], new float[10], default, default, default, 2, 3, 2, 4, false, new float[24]));
        Assert.Equal("GRU: weight_hh is 10 values long; 48 needed.", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => RecurrentKernels.GruForward(new float[24], 4, 2, new float[72], new float[24], new float[24], new float[12], new float[12 * 2], new float[48], default, default, default, 2, 3, 2, 4, false, new float[24]));
        Assert.Equal("GRU: columns [2, 6) do not fit an output 4 wide.", ex.Message);
    }
}
