using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>Gradient accumulation: micro-batches summed (then averaged) give the step of the whole batch.</summary>
public class GradientAccumulationTests
{
    private static float[][] Gradients(ParameterStore s) => s.Parameters.Select(p => s.Gradient(p).ToArray()).ToArray();

    [Fact]
    public void TwoAccumulatedHalves_GiveTwiceTheWholeBatchsGradient()
    {
        // ConvNet's fc2 weight gradient is written by its GEMM (beta = 0) when not accumulating: the flag must turn that into adding.
        using var net = new ConvNet(seed: 3);
        const int batch = 4, size = 784;
        var x = CompiledVsEagerTests.RandomData(batch * size, 31);
        var labels = CompiledVsEagerTests.RandomLabels(batch, 10, 32);
        net.TrainStep(x, labels, batch);
        var whole = Gradients(net.Parameters);

        net.TrainStep(x.AsSpan(0, 2 * size), labels.AsSpan(0, 2), 2);
        net.Parameters.AccumulateGradients = true;
        try { net.TrainStep(x.AsSpan(2 * size), labels.AsSpan(2), 2); }
        finally { net.Parameters.AccumulateGradients = false; }
        var halves = Gradients(net.Parameters);

        for (int p = 0; p < whole.Length; p++)
        {
            double scale = whole[p].Max(v => Math.Abs((double)v)) + 1e-6;
            for (int i = 0; i < whole[p].Length; i++)
                Assert.True(Math.Abs(2 * whole[p][i] - halves[p][i]) <= 1e-4 * scale, $"{net.Parameters.Parameters[p].Name}[{i}]: 2 × {whole[p][i]} vs {halves[p][i]}");
        }
        // Without the flag the next step starts from zero again.
        net.TrainStep(x, labels, batch);
        Assert.Equal(whole[^1], Gradients(net.Parameters)[^1]);
    }

    [Fact]
    public void Trainer_WithTwoAccumulationSteps_TakesTheStepsOfBatchesTwiceAsLarge()
    {
        var r = new Rng(41);
        const int n = 48, size = 2 * 9 * 9;
        var data = new Dataset(Enumerable.Range(0, n * size).Select(_ => r.NextFloat() * 2 - 1).ToArray(), Enumerable.Range(0, n).Select(i => i % 3).ToArray(), [2, 9, 9], 3);
        float[] Train(int batch, int steps)
        {
            using var net = new ConvChainNet(seed: 5);
            var trainer = new Trainer(net, new AdamW(net.Parameters, 1e-2f), new TrainerOptions { Epochs = 2, RestoreBest = false, AccumulationSteps = steps });
            trainer.Fit(new DataLoader(data, batch, shuffle: true, seed: 7), null);
            Assert.False(net.Parameters.AccumulateGradients);
            return net.Parameters.Values.ToArray();
        }
        var large = Train(16, 1);
        var accumulated = Train(8, 2);
        var small = Train(8, 1);
        double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b).Sum(t => (double)(t.First - t.Second) * (t.First - t.Second)));
        Assert.True(Distance(large, accumulated) < 1e-3, $"accumulated vs large batches: {Distance(large, accumulated)}");
        Assert.True(Distance(large, small) > 100 * Distance(large, accumulated), "the comparison is not vacuous: batches of 8 without accumulation train differently");
    }
}
