using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>The Trainer with regressors: float targets through DataLoaders, loss-only metrics, checkpoints and early stopping.</summary>
public class RegressionTrainingTests
{
    // y = tanh-free linear map of x plus a product term, 3 targets per sample: learnable by the small nets.
    private static Dataset Synthetic(int count, int inputs, ulong seed)
    {
        var r = new Rng(seed);
        var x = new float[count * inputs];
        var y = new float[count * 3];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < inputs; j++) x[i * inputs + j] = r.NextFloat() * 2 - 1;
            var s = x.AsSpan(i * inputs, inputs);
            y[i * 3] = 0.8f * s[0] - 0.5f * s[1];
            y[i * 3 + 1] = 0.3f * s[2] + s[0] * s[3];
            y[i * 3 + 2] = -0.6f * s[4] + 0.2f;
        }
        return new Dataset(x, y, [inputs], [3]);
    }

    [Fact]
    public void Trainer_FitsRegressors_WithLossOnlyMetrics_AndRestoresTheBestEpoch()
    {
        var (train, val) = Synthetic(400, 8, 1).Split(0.2, 2);
        Assert.Equal(3, train.TargetSize);
        using var mse = new ResNet(seed: 3);
        string dir = Path.Combine(Path.GetTempPath(), $"cnet-regression-{Guid.NewGuid():N}");
        try
        {
            var trainer = new Trainer(mse, new AdamW(mse.Parameters, 1e-2f), new TrainerOptions { Epochs = 15, OutputDirectory = dir });
            var history = trainer.Fit(new DataLoader(train, 32, seed: 4), new DataLoader(val, 64, shuffle: false));
            Assert.True(history[^1].TrainLoss < history[0].TrainLoss * 0.3, $"train MSE {history[0].TrainLoss:F4} → {history[^1].TrainLoss:F4}");
            Assert.All(history, m => Assert.True(double.IsNaN(m.TrainAccuracy) && double.IsNaN(m.ValidationAccuracy)));
            // The best epoch's weights are restored: evaluating them gives that epoch's validation loss.
            double best = history.Min(m => m.ValidationLoss);
            Assert.Equal(best, Trainer.Evaluate(mse, new DataLoader(val, 50, shuffle: false)), 1e-5);
            Assert.True(File.Exists(Path.Combine(dir, "best.safetensors")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

        // An L1 regressor over 6 inputs on the same kind of data.
        var (train6, val6) = Synthetic(300, 6, 5).Split(0.2, 6);
        using var l1 = new L1Net(seed: 2);
        var l1History = new Trainer(l1, new AdamW(l1.Parameters, 1e-2f), new TrainerOptions { Epochs = 10, EarlyStoppingPatience = 0 })
            .Fit(new DataLoader(train6, 32, seed: 1), new DataLoader(val6, 64, shuffle: false));
        Assert.True(l1History[^1].ValidationLoss < l1History[0].ValidationLoss * 0.6, $"validation L1 {l1History[0].ValidationLoss:F4} → {l1History[^1].ValidationLoss:F4}");
    }

    [Fact]
    public void RegressionData_ThatDoesNotFit_IsRefusedByName()
    {
        using var net = new ResNet();
        var trainer = new Trainer(net, new AdamW(net.Parameters, 1e-3f), new TrainerOptions { Epochs = 1 });
        var labelled = new Dataset(new float[16], [0, 1], [8], 2);
        var ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new DataLoader(labelled, 2), null));
        Assert.Contains("ResNet is a regressor: its loaders need a dataset with float targets", ex.Message);
        var wide = new Dataset(new float[16], new float[8], [8], [4]);
        ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new DataLoader(wide, 2), null));
        Assert.Equal("ResNet outputs 3 floats per sample, but the dataset's targets are [4] (4).", ex.Message);
        Assert.Contains("targets must be finite", Assert.Throws<ArgumentException>(() => new Dataset(new float[8], [float.NaN, 0, 0], [8], [3])).Message);
        Assert.Contains("need 6 floats of targets", Assert.Throws<ArgumentException>(() => new Dataset(new float[16], new float[5], [8], [3])).Message);
        // Subsets and splits carry the targets along with their samples.
        var data = Synthetic(10, 8, 3);
        var sub = data.Subset([7, 2]);
        Assert.Equal(data.Targets!.AsSpan(21, 3).ToArray(), sub.Targets!.AsSpan(0, 3).ToArray());
        Assert.Equal(data.Sample(2).ToArray(), sub.Sample(1).ToArray());
    }
}
