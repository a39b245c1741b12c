using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

/// <summary>Networks with several inputs: one span per input in Forward's order, checked by name, equal to the eager path.</summary>
public class MultiInputTests
{
    private static float[][] Gradients(ParameterStore store) => store.Parameters.Select(p => store.Gradient(p).ToArray()).ToArray();

    private static void AssertSameGradients(ParameterStore store, float[][] eager, float tolerance)
    {
        var compiled = Gradients(store);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++)
                Assert.True(Math.Abs(eager[p][i] - compiled[p][i]) < tolerance, $"{store.Parameters[p].Name}[{i}]: eager {eager[p][i]}, compiled {compiled[p][i]}");
        Assert.All(compiled, g => Assert.Contains(g, v => v != 0)); // both branches train
    }

    [Fact]
    public void ImageAndMetadata_TrainStepForwardAndEvaluate_MatchEager()
    {
        using var net = new TwoInputNet(seed: 4);
        Assert.Equal(64, TwoInputNet.ImageFeatures);
        Assert.Equal(4, TwoInputNet.MetaFeatures);
        const int batch = 3;
        var image = CompiledVsEagerTests.RandomData(batch * 64, 1);
        var meta = CompiledVsEagerTests.RandomData(batch * 4, 2);
        int[] labels = [2, 0, 1];
        net.Parameters.ZeroGradients();
        Tensor logits, loss;
        using (Eager.Training())
        {
            logits = net.ForwardEager(new Tensor(image, batch, 1, 8, 8), new Tensor(meta, batch, 4));
            loss = logits.CrossEntropy(labels);
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        var compiledLogits = new float[batch * 3];
        Assert.Equal(loss.Data[0], net.TrainStep(image, meta, labels, batch, compiledLogits), 1e-5f);
        for (int i = 0; i < compiledLogits.Length; i++) Assert.Equal(logits.Data[i], compiledLogits[i], 1e-5f);
        AssertSameGradients(net.Parameters, eager, 1e-5f);
        var y = new float[batch * 3];
        net.Forward(image, meta, batch, y);
        Assert.Equal(compiledLogits, y);
        Assert.Equal(loss.Data[0], net.EvaluateLoss(image, meta, labels, batch), 1e-5f);
        Assert.StartsWith("TwoInputNet: inputs image [1, 8, 8], meta [4]", TwoInputNet.Summary());
    }

    [Fact]
    public void TokenIdsAndTokenTypes_ShareTheSequenceLengthAndTheMask()
    {
        using var net = new PairNet(seed: 5);
        const int batch = 2, seq = 6;
        var r = new Rng(3);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => r.NextInt(50)).ToArray();
        var types = Enumerable.Range(0, batch * seq).Select(i => i % seq < 3 ? 0 : 1).ToArray();
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - 2 * (i / seq) ? 1 : 0).ToArray();
        int[] labels = [1, 2];
        net.Parameters.ZeroGradients();
        Tensor loss, logits;
        using (Eager.Training())
        {
            logits = net.ForwardEager(Tensor.FromIds(ids, batch, seq).WithMask(mask), Tensor.FromIds(types, batch, seq).WithMask(mask));
            loss = logits.CrossEntropy(labels);
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        var compiledLogits = new float[batch * 3];
        Assert.Equal(loss.Data[0], net.TrainStep(ids, types, labels, mask, batch, seq, compiledLogits), 1e-5f);
        for (int i = 0; i < compiledLogits.Length; i++) Assert.Equal(logits.Data[i], compiledLogits[i], 1e-5f);
        AssertSameGradients(net.Parameters, eager, 1e-5f);
        // The token types matter: flipping them changes the logits.
        var flipped = types.Select(t => 1 - t).ToArray();
        var y = new float[batch * 3];
        net.Forward(ids, flipped, mask, batch, seq, y);
        Assert.Contains(Enumerable.Range(0, y.Length), i => Math.Abs(y[i] - compiledLogits[i]) > 1e-4f);
    }

    [Fact]
    public void WrongSpans_NameTheInput()
    {
        using var net = new TwoInputNet();
        var ex = Assert.Throws<ArgumentException>(() => net.Forward(new float[128], new float[7], 2, new float[6]));
        Assert.Equal("TwoInputNet.Forward: input 'meta' has 7 values, but batch 2 × [4] needs 8. (Parameter 'meta')", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.TrainStep(new float[100], new float[8], [0, 1], 2));
        Assert.Contains("input 'image' has 100 values, but batch 2 × [1, 8, 8] needs 128", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(new float[128], new float[8], 0, new float[6]));
        ex = Assert.Throws<ArgumentException>(() => net.Forward(new float[128], new float[8], 2, new float[5]));
        Assert.Contains("the output span has 5 floats", ex.Message);
        using var pair = new PairNet();
        ex = Assert.Throws<ArgumentException>(() => pair.Forward(new int[12], new int[10], default, 2, 6, new float[6]));
        Assert.Contains("input 'types' has 10 values, but batch 2 × [6] needs 12", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => pair.Forward(new int[22], new int[22], default, 2, 11, new float[6]));
    }
}
