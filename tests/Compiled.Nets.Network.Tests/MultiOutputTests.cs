using Compiled.Nets;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// Networks whose Forward returns a tuple: one span per output, one loss per named output, their weighted sum trained
/// and returned; checked against the eager tape computing the same sum.
/// </summary>
public class MultiOutputTests
{
    private static float[][] Gradients(ParameterStore store) => store.Parameters.Select(p => store.Gradient(p).ToArray()).ToArray();

    private static void AssertClose(float expected, float actual, string what, float tolerance = 1e-5f) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * Math.Max(1f, Math.Abs(expected)), $"{what}: eager {expected}, compiled {actual}");

    private static void AssertSameGradients(ParameterStore store, float[][] eager, float tolerance)
    {
        var compiled = Gradients(store);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++)
                AssertClose(eager[p][i], compiled[p][i], $"{store.Parameters[p].Name}[{i}]", tolerance);
        Assert.All(compiled, g => Assert.Contains(g, v => v != 0)); // both heads and the trunk train
    }

    [Fact]
    public void TwoHeads_TrainTheWeightedSumOfTheirLosses_AsTheEagerTapeDoes()
    {
        using var net = new TwoHeadNet(seed: 6);
        Assert.Equal((3, 4, 16), (TwoHeadNet.DigitFeatures, TwoHeadNet.BoxFeatures, TwoHeadNet.FeaturesFeatures));
        const int batch = 5;
        var x = CompiledVsEagerTests.RandomData(batch * 64, 1);
        var boxTargets = CompiledVsEagerTests.RandomData(batch * 4, 2).Select(v => 0.5f + 0.5f * v).ToArray();
        int[] labels = [2, 0, 1, 1, 0];

        net.Parameters.ZeroGradients();
        Tensor digit, box, features, ce, smooth, loss;
        using (Eager.Training())
        {
            (digit, box, features) = net.ForwardEager(new Tensor(x, batch, 1, 8, 8));
            ce = digit.CrossEntropy(labels, 0.1f);
            smooth = box.SmoothL1(new Tensor(boxTargets, batch, 4), 0.5);
            loss = ce + smooth * 0.5f;
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);

        float[] d = new float[batch * 3], b = new float[batch * 4], f = new float[batch * 16], losses = new float[2];
        float total = net.TrainStep(x, labels, boxTargets, batch, d, b, f, losses);
        AssertClose(loss.Data[0], total, "weighted sum");
        AssertClose(ce.Data[0], losses[0], "cross-entropy");
        AssertClose(smooth.Data[0], losses[1], "smooth L1");
        for (int i = 0; i < d.Length; i++) AssertClose(digit.Data[i], d[i], $"digit[{i}]");
        for (int i = 0; i < b.Length; i++) AssertClose(box.Data[i], b[i], $"box[{i}]");
        for (int i = 0; i < f.Length; i++) AssertClose(features.Data[i], f[i], $"features[{i}]");
        AssertSameGradients(net.Parameters, eager, 1e-5f);

        // Evaluation: the same outputs (no dropout here) and the same losses, from many threads.
        float[] d2 = new float[batch * 3], b2 = new float[batch * 4], f2 = new float[batch * 16];
        net.Forward(x, batch, d2, b2, f2);
        Assert.Equal(d, d2);
        Assert.Equal(b, b2);
        Assert.Equal(f, f2);
        var evaluated = new float[2];
        AssertClose(loss.Data[0], net.EvaluateLoss(x, labels, boxTargets, batch, losses: evaluated), "evaluated sum");
        Assert.Equal(losses, evaluated);
    }

    [Fact]
    public void TwoHeads_StepsLowerBothLosses()
    {
        using var net = new TwoHeadNet(seed: 2);
        var opt = new AdamW(net.Parameters, 3e-3f);
        const int batch = 8;
        var x = CompiledVsEagerTests.RandomData(batch * 64, 3);
        var boxTargets = CompiledVsEagerTests.RandomData(batch * 4, 4).Select(v => 0.5f + 0.4f * v).ToArray();
        int[] labels = [0, 1, 2, 0, 1, 2, 0, 1];
        float[] first = new float[2], last = new float[2];
        net.TrainStep(x, labels, boxTargets, batch, losses: first);
        opt.Step();
        for (int step = 0; step < 60; step++) { net.TrainStep(x, labels, boxTargets, batch, losses: last); opt.Step(); }
        Assert.True(last[0] < 0.5f * first[0], $"cross-entropy {first[0]} -> {last[0]}");
        Assert.True(last[1] < 0.5f * first[1], $"smooth L1 {first[1]} -> {last[1]}");
    }

    [Fact]
    public void SequenceInputsAndTwoHeads_MatchEager()
    {
        using var net = new PairTwoHeadNet(seed: 5);
        const int batch = 2, seq = 6;
        var r = new Rng(3);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => r.NextInt(50)).ToArray();
        var types = Enumerable.Range(0, batch * seq).Select(i => i % seq < 3 ? 0 : 1).ToArray();
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - 2 * (i / seq) ? 1 : 0).ToArray();
        var tokenTargets = CompiledVsEagerTests.RandomData(batch * seq * 2, 6);
        int[] labels = [1, 2];
        net.Parameters.ZeroGradients();
        Tensor tokens, sentence, loss;
        using (Eager.Training())
        {
            (tokens, sentence) = net.ForwardEager(Tensor.FromIds(ids, batch, seq).WithMask(mask), Tensor.FromIds(types, batch, seq).WithMask(mask));
            loss = sentence.Nll(labels) + tokens.Mse(new Tensor(tokenTargets, batch, seq, 2)) * 2f;
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        float[] t = new float[batch * seq * 2], s = new float[batch * 3];
        AssertClose(loss.Data[0], net.TrainStep(ids, types, labels, tokenTargets, mask, batch, seq, t, s), "weighted sum");
        for (int i = 0; i < t.Length; i++) AssertClose(tokens.Data[i], t[i], $"tokens[{i}]");
        for (int i = 0; i < s.Length; i++) AssertClose(sentence.Data[i], s[i], $"sentence[{i}]");
        AssertSameGradients(net.Parameters, eager, 1e-5f);
    }

    [Fact]
    public void ASiamesePair_WithACosineEmbeddingLoss_MatchesEager()
    {
        using var net = new SiameseNet(seed: 8);
        const int batch = 6;
        var left = CompiledVsEagerTests.RandomData(batch * 6, 1);
        var right = CompiledVsEagerTests.RandomData(batch * 6, 2);
        float[] alike = [1, -1, 1, -1, -1, 1];
        int[] kinds = [0, 1, 2, 2, 1, 0];
        net.Parameters.ZeroGradients();
        Tensor a, b, kind, cosine, ce, loss;
        using (Eager.Training())
        {
            (a, b, kind) = net.ForwardEager(new Tensor(left, batch, 6), new Tensor(right, batch, 6));
            cosine = a.CosineEmbedding(b, alike, 0.2f);
            ce = kind.CrossEntropy(kinds);
            loss = cosine * 0.5f + ce;
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        var losses = new float[2];
        AssertClose(loss.Data[0], net.TrainStep(left, right, alike, kinds, batch, losses: losses), "weighted sum");
        AssertClose(cosine.Data[0], losses[0], "cosine embedding");
        AssertClose(ce.Data[0], losses[1], "cross-entropy");
        AssertSameGradients(net.Parameters, eager, 1e-5f);
        AssertClose(loss.Data[0], net.EvaluateLoss(left, right, alike, kinds, batch), "evaluated");
    }

    [Fact]
    public void WrongSpans_NameTheOutput()
    {
        using var net = new TwoHeadNet();
        var x = new float[2 * 64];
        var ex = Assert.Throws<ArgumentException>(() => net.Forward(x, 2, new float[6], new float[7], new float[32]));
        Assert.Equal("TwoHeadNet.Forward: output 'box' has 7 floats, but batch 2 × [4] needs 8. (Parameter 'box')", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.TrainStep(x, [0, 1], new float[8], 2, losses: new float[3]));
        Assert.Contains("losses has 3 values, but the network has 2 losses", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.TrainStep(x, [0, 1], new float[6], 2));
        Assert.Contains("boxTargets have 6 floats, but batch 2 × [4] needs 8", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.EvaluateLoss(x, [0], new float[8], 2));
        Assert.Contains("1 labels for a batch of 2", ex.Message);
        // Outputs not given to TrainStep are not written; an empty span is fine.
        net.TrainStep(x, [0, 1], new float[8], 2, box: new float[8]);
    }
}
