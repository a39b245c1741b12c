namespace Compiled.Nets.Network.Tests;

/// <summary>
/// One loaded network serving many threads, as a server team uses ONNX Runtime's sessions: concurrent Forward and
/// EvaluateLoss give, bit for bit, what the same calls give one after another; a training step needs the instance to
/// itself and says so.
/// </summary>
public class ConcurrencyTests
{
    private const int Threads = 8, CallsPerThread = 40;

    [Fact]
    public void ConvNet_ConcurrentForwardAndEvaluateLoss_AreBitIdenticalToSequentialCalls()
    {
        using var net = new ConvNet(seed: 11);
        // Requests of different sizes, so workspaces of different capacities meet.
        var batches = Enumerable.Range(0, 24).Select(i => 1 + i % 9).ToArray();
        var inputs = batches.Select((b, i) => CompiledVsEagerTests.RandomData(b * 784, (ulong)(100 + i))).ToArray();
        var labels = batches.Select((b, i) => CompiledVsEagerTests.RandomLabels(b, 10, (ulong)(200 + i))).ToArray();
        var expected = batches.Select((b, i) => { var y = new float[b * 10]; net.Forward(inputs[i], b, y); return y; }).ToArray();
        var expectedLoss = batches.Select((b, i) => net.EvaluateLoss(inputs[i], labels[i], b)).ToArray();

        RunConcurrently((thread, call) =>
        {
            int i = (thread * 7 + call * 5) % batches.Length;
            var y = new float[batches[i] * 10];
            if (call % 3 == 2)
            {
                float loss = net.EvaluateLoss(inputs[i], labels[i], batches[i], y);
                Assert.Equal(BitConverter.SingleToInt32Bits(expectedLoss[i]), BitConverter.SingleToInt32Bits(loss));
            }
            else net.Forward(inputs[i], batches[i], y);
            Assert.Equal(expected[i], y);
        });
    }

    [Fact]
    public void MiniBert_ConcurrentMaskedForward_IsBitIdenticalToSequentialCalls_AlsoWithBFloat16ServingWeights()
    {
        using var net = new MiniBert(seed: 5);
        foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.BFloat16 })
        {
            if (precision == WeightPrecision.BFloat16) net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
            var shapes = Enumerable.Range(0, 12).Select(i => (Batch: 1 + i % 4, Seq: 3 + i % 10)).ToArray();
            var requests = shapes.Select((s, i) =>
            {
                var rng = new Rng((ulong)(300 + i));
                var ids = Enumerable.Range(0, s.Batch * s.Seq).Select(_ => (int)(rng.NextUInt64() % 50)).ToArray();
                var mask = Enumerable.Range(0, s.Batch * s.Seq).Select(k => k % s.Seq < Math.Max(1, s.Seq - k / s.Seq) ? 1 : 0).ToArray();
                return (ids, mask);
            }).ToArray();
            var expected = shapes.Select((s, i) => { var y = new float[s.Batch * 3]; net.Forward(requests[i].ids, requests[i].mask, s.Batch, s.Seq, y); return y; }).ToArray();
            RunConcurrently((thread, call) =>
            {
                int i = (thread * 5 + call * 3) % shapes.Length;
                var y = new float[shapes[i].Batch * 3];
                net.Forward(requests[i].ids, requests[i].mask, shapes[i].Batch, shapes[i].Seq, y);
                Assert.Equal(expected[i], y);
            });
        }
    }

    [Fact]
    public void ConcurrentTrainSteps_OnOneInstance_FailWithAClearMessage_AndNeverCorruptTheOther()
    {
        using var net = new ConvNet(seed: 3);
        var x = CompiledVsEagerTests.RandomData(8 * 784, 9);
        var y = CompiledVsEagerTests.RandomLabels(8, 10, 10);
        float alone = net.TrainStep(x, y, 8);
        var refused = new System.Collections.Concurrent.ConcurrentBag<InvalidOperationException>();
        var losses = new System.Collections.Concurrent.ConcurrentBag<float>();
        RunConcurrently((_, _) =>
        {
            try { losses.Add(net.TrainStep(x, y, 8)); }
            catch (InvalidOperationException e) { refused.Add(e); }
        }, threads: 2, calls: 30);
        Assert.NotEmpty(refused);
        Assert.All(refused, e => Assert.Contains("ConvNet.TrainStep: another TrainStep is running on it", e.Message));
        // Without an optimizer step the weights do not move: every step that ran computed the same loss.
        Assert.All(losses, l => Assert.Equal(BitConverter.SingleToInt32Bits(alone), BitConverter.SingleToInt32Bits(l)));
    }

    private static void RunConcurrently(Action<int, int> call, int threads = Threads, int calls = CallsPerThread)
    {
        using var start = new Barrier(threads);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            try { for (int c = 0; c < calls; c++) call(t, c); }
            catch (Exception e) { errors.Enqueue(e); }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        if (!errors.IsEmpty) throw new AggregateException(errors);
    }
}

/// <summary>Attention masks as HF tokenizers make them, and nothing else.</summary>
public class AttentionMaskTests
{
    [Fact]
    public void AMaskValueOtherThanZeroOrOne_OrARowWithoutATokens_IsAClearError()
    {
        using var net = new SeqNet(seed: 1);
        int batch = 2, seq = 4;
        var ids = Enumerable.Range(0, batch * seq).Select(i => i % 7).ToArray();
        var y = new float[batch * net.OutputSize];
        var mask = new[] { 1, 1, 1, 0, 1, 1, 0, 0 };
        net.Forward(ids, mask, batch, seq, y);
        mask[5] = 2;
        Assert.Contains("SeqNet.Forward: the attention mask holds 2 at [1, 1]", Assert.Throws<ArgumentException>(() => net.Forward(ids, mask, batch, seq, y)).Message);
        mask = [1, 0, 0, 0, 0, 0, 0, 0];
        Assert.Contains("SeqNet.TrainStep: row 1 of the attention mask has no 1", Assert.Throws<ArgumentException>(() => net.TrainStep(ids, [0, 1], mask, batch, seq)).Message);
    }
}
