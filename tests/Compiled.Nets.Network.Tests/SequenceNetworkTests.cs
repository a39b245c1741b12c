using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

/// <summary>Networks with the symbolic sequence dimension T: one workspace serves every T ≤ MaxSequence.</summary>
public class SequenceNetworkTests
{
    private static (int[] Ids, int[] Mask) Batch(int batch, int seq, int seed)
    {
        var r = new Rng((ulong)seed);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => r.NextInt(50)).ToArray();
        // Right padding as a tokenizer makes it: sample b has seq - b real tokens (at least 1).
        var mask = new int[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < Math.Max(1, seq - b); t++) mask[b * seq + t] = 1;
        return (ids, mask);
    }

    private static float[][] Gradients(INetwork net) => net.Parameters.Parameters.Select(p => net.Parameters.Gradient(p).ToArray()).ToArray();

    /// <summary>Loss, logits and every gradient of one compiled TrainStep against the eager tape; returns the compiled logits.</summary>
    private static float[] AssertTrainStepMatchesEager<TNet>(TNet concrete, int[] ids, int[] mask, int[] labels, int batch, int seq)
        where TNet : ISequenceClassifier, ILayer
    {
        ISequenceClassifier net = concrete;
        int classes = net.OutputSize;
        net.Parameters.ZeroGradients();
        Tensor loss, logits;
        using (Eager.Training())
        {
            logits = ((ILayer)concrete).Forward(Tensor.FromIds(ids, batch, seq).WithMask(mask));
            loss = logits.CrossEntropy(labels);
            loss.Backward();
        }
        var eager = Gradients(net);
        var compiledLogits = new float[batch * classes];
        float compiled = net.TrainStep(ids, labels, mask, batch, seq, compiledLogits);
        Assert.Equal(loss.Data[0], compiled, 1e-5f);
        for (int i = 0; i < compiledLogits.Length; i++) Assert.Equal(logits.Data[i], compiledLogits[i], 1e-4f);
        var grads = Gradients(net);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++)
                Assert.True(Math.Abs(eager[p][i] - grads[p][i]) < 1e-4f, $"{net.Parameters.Parameters[p].Name}[{i}]: eager {eager[p][i]}, compiled {grads[p][i]}");
        Assert.Contains(grads[0], v => v != 0);
        var evalLogits = new float[batch * classes];
        net.Forward(ids, mask, batch, seq, evalLogits);
        for (int i = 0; i < evalLogits.Length; i++) Assert.Equal(compiledLogits[i], evalLogits[i], 1e-6f);
        Assert.Equal(compiled, net.EvaluateLoss(ids, labels, mask, batch, seq), 1e-5f);
        return compiledLogits;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 16)]
    public void AttentionPooling_SoftmaxAndSumOverT_MatchEager_AndIgnorePadding(int batch, int seq)
    {
        using var net = new AttentionPoolNet(seed: 8);
        var (ids, mask) = Batch(batch, seq, seq + 40);
        int[] labels = Enumerable.Range(0, batch).Select(b => b % 3).ToArray();
        var logits = AssertTrainStepMatchesEager(net, ids, mask, labels, batch, seq);
        // Other tokens under the padding change nothing: the softmax gives them no weight, the sum and mean skip them.
        var other = (int[])ids.Clone();
        for (int i = 0; i < other.Length; i++) if (mask[i] == 0) other[i] = (other[i] + 17) % 50;
        var again = new float[logits.Length];
        net.Forward(other, mask, batch, seq, again);
        Assert.Equal(logits, again);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 16)]
    public void SeqNet_TrainStep_MatchesEager_AtEachLength(int batch, int seq)
    {
        using var net = new SeqNet(seed: 5);
        Assert.Equal(16, SeqNet.MaxSequence);
        var (ids, mask) = Batch(batch, seq, seq);
        AssertTrainStepMatchesEager(net, ids, mask, Enumerable.Range(0, batch).Select(b => (b + 1) % 3).ToArray(), batch, seq);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 12)]
    public void MiniBert_TrainStep_MatchesEager_WithPadding(int batch, int seq)
    {
        // Self-attention with the padding mask inside composed encoder layers, BERT's embedding sum.
        using var net = new MiniBert(seed: 7);
        var (ids, mask) = Batch(batch, seq, 3 * seq);
        AssertTrainStepMatchesEager(net, ids, mask, Enumerable.Range(0, batch).Select(b => (2 * b + 1) % 3).ToArray(), batch, seq);
        var query = net.Parameters["encoder.layer.0.attention.self.query.weight"];
        if (seq > 1) Assert.Contains(net.Parameters.Gradient(query).ToArray(), v => v != 0); // one key: softmax is 1 whatever q is
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 12)]
    public void RecurrentNets_TrainStep_MatchesEager_WithPadding(int batch, int seq)
    {
        // Stacked bidirectional LSTM; two GRUs of different widths (one without biases) sharing their carry region.
        var (ids, mask) = Batch(batch, seq, 5 * seq);
        var labels = Enumerable.Range(0, batch).Select(b => (b + 2) % 3).ToArray();
        using (var lstm = new LstmNet(seed: 3)) AssertTrainStepMatchesEager(lstm, ids, mask, labels, batch, seq);
        using (var gru = new GruNet(seed: 4)) AssertTrainStepMatchesEager(gru, ids, mask, labels, batch, seq);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    public void ShapeMethodsAndMatMul_OnASequence_MatchEager(int batch, int seq)
    {
        using var net = new SeqShapeNet(seed: 8);
        var (ids, mask) = Batch(batch, seq, 7 * seq);
        AssertTrainStepMatchesEager(net, ids, mask, Enumerable.Range(0, batch).Select(b => b % 3).ToArray(), batch, seq);
    }

    [Fact]
    public void EmbeddingPaddingRow_StartsAtZeros_AndGetsNoGradient()
    {
        using var net = new PadEmbedNet(seed: 4);
        var table = net.Parameters["embed.weight"];
        Assert.All(net.Parameters.Value(table).Slice(0, 4).ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(net.Parameters.Value(table).Slice(4, 4).ToArray(), v => v != 0);
        int[] ids = [3, 0, 7, 0, 5, 9, 0, 0];
        var (_, mask) = Batch(2, 4, 1);
        AssertTrainStepMatchesEager(net, ids, mask, [1, 0], 2, 4);
        Assert.All(net.Parameters.Gradient(table).Slice(0, 4).ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(net.Parameters.Gradient(table).Slice(12, 4).ToArray(), v => v != 0);
    }

    [Fact]
    public void RecurrentNets_PaddedPositions_DoNotChangeTheResult()
    {
        // Packed-sequence semantics: the same sentence padded to 5 and to 12 positions, junk ids in the padding, gives
        // the same logits (the reverse direction starts at the last real token, the masked mean ignores the rest).
        int[] sentence = [4, 9, 2, 7];
        float[] Logits(ISequenceClassifier net, int seq, int junk)
        {
            var ids = Enumerable.Range(0, seq).Select(t => t < sentence.Length ? sentence[t] : junk + t).ToArray();
            var mask = Enumerable.Range(0, seq).Select(t => t < sentence.Length ? 1 : 0).ToArray();
            var y = new float[3];
            net.Forward(ids, mask, 1, seq, y);
            return y;
        }
        using var lstm = new LstmNet(seed: 6);
        using var gru = new GruNet(seed: 6);
        foreach (ISequenceClassifier net in new ISequenceClassifier[] { lstm, gru })
        {
            var a = Logits(net, 5, 10); var b = Logits(net, 12, 30);
            for (int i = 0; i < 3; i++) Assert.Equal(a[i], b[i], 1e-5f);
            var unmasked = new float[3];
            net.Forward(Enumerable.Range(0, 12).Select(t => t < sentence.Length ? sentence[t] : 30 + t).ToArray(), default, 1, 12, unmasked);
            Assert.Contains(Enumerable.Range(0, 3), i => Math.Abs(unmasked[i] - a[i]) > 1e-3f);
        }
    }

    [Fact]
    public void FixedLengthLstm_TrainStep_MatchesEager()
    {
        // A float sequence of fixed length: no mask, T a constant in the generated code.
        using var net = new FixedLstmNet(seed: 2);
        const int batch = 3;
        var x = Enumerable.Range(0, batch * 28).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        int[] labels = [1, 0, 1];
        net.Parameters.ZeroGradients();
        Tensor loss;
        using (Eager.Training()) { loss = ((ILayer)net).Forward(new Tensor(x, batch, 7, 4)).CrossEntropy(labels); loss.Backward(); }
        var eager = Gradients(net);
        Assert.Equal(loss.Data[0], net.TrainStep(x, labels, batch), 1e-5f);
        var grads = Gradients(net);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++)
                Assert.True(Math.Abs(eager[p][i] - grads[p][i]) < 1e-5f, $"{net.Parameters.Parameters[p].Name}[{i}]: eager {eager[p][i]}, compiled {grads[p][i]}");
        Assert.Equal(["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"], net.Parameters.Parameters.Select(p => p.Name));
        Assert.All(grads, g => Assert.Contains(g, v => v != 0));
    }

    [Fact]
    public void MiniBert_FrozenLowerLayers_GetNoGradient_AndTheUpperOnesTheSameAsUnfrozen()
    {
        // Parameter-efficient fine-tuning: freezing the embeddings and layer 0 must not change layer 1's, the pooler's
        // or the head's gradients, and must leave the frozen ones zero (no work is done for them).
        using var net = new MiniBert(seed: 8);
        var (ids, mask) = Batch(3, 9, 4);
        int[] labels = [0, 2, 1];
        net.TrainStep(ids, labels, mask, 3, 9);
        var full = Gradients(net);
        Assert.Equal(5 + 16, net.Parameters.Freeze("embeddings.", "encoder.layer.0.")); // 5 embedding tensors, 16 in a layer
        net.Parameters.Gradients.Fill(float.NaN);
        net.TrainStep(ids, labels, mask, 3, 9);
        var partial = Gradients(net);
        for (int p = 0; p < full.Length; p++)
        {
            var info = net.Parameters.Parameters[p];
            if (!info.RequiresGrad) Assert.All(partial[p], v => Assert.Equal(0f, v));
            else Assert.Equal(full[p], partial[p]);
        }
        Assert.Contains(net.Parameters.Parameters, p => p.Name.StartsWith("encoder.layer.1.", StringComparison.Ordinal) && p.RequiresGrad);
    }

    [Fact]
    public void MiniBert_PaddedTokens_DoNotChangeTheRealOnes()
    {
        // The same sentence padded to 6 and to 12 positions (with junk ids in the padding) gives the same [CLS] logits.
        using var net = new MiniBert(seed: 4);
        int[] sentence = [1, 7, 9, 3];
        float[] Logits(int seq, int junk)
        {
            var ids = Enumerable.Range(0, seq).Select(t => t < sentence.Length ? sentence[t] : junk + t).ToArray();
            var mask = Enumerable.Range(0, seq).Select(t => t < sentence.Length ? 1 : 0).ToArray();
            var y = new float[3];
            net.Forward(ids, mask, 1, seq, y);
            return y;
        }
        var a = Logits(6, 10); var b = Logits(12, 30);
        for (int i = 0; i < 3; i++) Assert.Equal(a[i], b[i], 1e-5f);
        // Without the mask the padding is attended to and the logits move.
        var ids12 = Enumerable.Range(0, 12).Select(t => t < sentence.Length ? sentence[t] : 30 + t).ToArray();
        var unmasked = new float[3];
        net.Forward(ids12, default, 1, 12, unmasked);
        Assert.Contains(Enumerable.Range(0, 3), i => Math.Abs(unmasked[i] - a[i]) > 1e-3f);
    }

    [Fact]
    public void SeqNet_Mask_ChangesOnlyTheMeanOverRealTokens()
    {
        using var net = new SeqNet(seed: 2);
        var (ids, _) = Batch(2, 6, 1);
        var a = new float[6];
        var b = new float[6];
        var full = new int[12]; Array.Fill(full, 1);
        net.Forward(ids, default, 2, 6, a);           // empty mask = every position real
        net.Forward(ids, full, 2, 6, b);
        Assert.Equal(a, b);
        var padded = (int[])full.Clone(); padded[5] = 0; // sample 0's last token is padding
        var changed = (int[])ids.Clone(); changed[5] = (ids[5] + 1) % 50;
        var c = new float[6]; var d = new float[6];
        net.Forward(ids, padded, 2, 6, c);
        net.Forward(changed, padded, 2, 6, d);
        Assert.Equal(c, d);                           // a padded position's id does not matter
        Assert.NotEqual(a[0], c[0]);
    }

    [Fact]
    public void SeqNet_DifferentLengths_ShareOneWorkspace_AndAllocateNothing()
    {
        using var net = new SeqNet(seed: 1);
        var batches = new[] { Batch(8, 16, 1), Batch(8, 3, 2), Batch(5, 9, 3) };
        var lengths = new[] { 16, 3, 9 };
        var sizes = new[] { 8, 8, 5 };
        var labels = new int[8];
        for (int i = 0; i < 3; i++) net.TrainStep(batches[i].Ids, labels.AsSpan(0, sizes[i]), batches[i].Mask, sizes[i], lengths[i]);
        Assert.Equal(0, Compiled.Nets.Tests.Allocations.SteadyState(() =>
        {
            for (int i = 0; i < 3; i++) net.TrainStep(batches[i].Ids, labels.AsSpan(0, sizes[i]), batches[i].Mask, sizes[i], lengths[i]);
        }));
    }

    [Fact]
    public void SeqNet_RejectsBadLengthsAndMasks_WithClearMessages()
    {
        using var net = new SeqNet();
        var ids = new int[2 * 17];
        var logits = new float[6];
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(ids, default, 2, 17, logits));
        Assert.Contains("[1, 16] (MaxSequence)", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => net.Forward(ids.AsSpan(0, 10), default, 2, 4, logits));
        Assert.Contains("input has 10 values, but batch 2 × [4] needs 8", ex2.Message);
        var ex3 = Assert.Throws<ArgumentException>(() => net.Forward(ids.AsSpan(0, 8), new int[7], 2, 4, logits));
        Assert.Contains("the mask has 7 values, but batch 2 × sequence 4 needs 8", ex3.Message);
    }

    [Fact]
    public void SeqRegressor_OutputKeepsT_MatchesEager()
    {
        using var net = new SeqRegressor(seed: 4);
        int batch = 3, seq = 7;
        var r = new Rng(9);
        var x = Enumerable.Range(0, batch * seq * 4).Select(_ => r.NextFloat() * 2 - 1).ToArray();
        var y = Enumerable.Range(0, batch * seq * 2).Select(_ => r.NextFloat()).ToArray();
        net.Parameters.ZeroGradients();
        Tensor loss;
        using (Eager.Training())
        {
            loss = net.ForwardEager(new Tensor(x, batch, seq, 4)).Mse(new Tensor(y, batch, seq, 2));
            loss.Backward();
        }
        var eager = Gradients(net);
        var output = new float[batch * seq * 2];
        float compiled = net.TrainStep(x, y, default, batch, seq, output);
        Assert.Equal(loss.Data[0], compiled, 1e-5f);
        var grads = Gradients(net);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++) Assert.True(Math.Abs(eager[p][i] - grads[p][i]) < 1e-5f, $"{net.Parameters.Parameters[p].Name}[{i}]");
        Assert.Equal(10, SeqRegressor.MaxSequence);
        Assert.Equal(10, ((ISequenceNetwork)net).MaxSequence);
        Assert.Equal(new[] { 10, 2 }, net.OutputShape);
    }
}
