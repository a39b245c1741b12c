using Compiled.Nets.Data;
using Compiled.Nets.Serialization;
using Compiled.Nets.Training;

namespace Compiled.Nets.Runtime.Tests.Training;

/// <summary>
/// A run that diverges never reaches a checkpoint; resume keeps best-model restore; a failed load changes nothing;
/// interrupted writes leave no litter behind.
/// </summary>
public class DivergenceAndCheckpointTests
{
    private static Dataset Data(int n, ulong seed)
    {
        var r = new Rng(seed);
        var x = new float[n * 2]; var y = new int[n];
        for (int i = 0; i < n; i++) { y[i] = i % 3; x[2 * i] = (float)r.NextGaussian() + y[i]; x[2 * i + 1] = (float)r.NextGaussian() - y[i]; }
        return new Dataset(x, y, [2], 3);
    }

    private static string Temp() => Directory.CreateTempSubdirectory("cnets-ckpt").FullName;

    /// <summary>An optimizer whose last step of an epoch blows the weights up, as a diverging run's does.</summary>
    private sealed class Exploding(ParameterStore s, int explodeAtStep) : Optimizer(s, 0.01f)
    {
        protected override void Update(ParameterInfo p, Span<float> value, Span<float> grad)
        {
            if (StepCount == explodeAtStep) value.Fill(p.Name.EndsWith("weight", StringComparison.Ordinal) ? 1.8e37f : float.NaN);
            else for (int i = 0; i < value.Length; i++) value[i] -= LearningRate * grad[i];
        }
    }

    [Fact]
    public void AStepThatDivergesAtTheEndOfAnEpoch_IsNeverSaved_AndTheLastGoodCheckpointStays()
    {
        var dir = Temp();
        var net = new SoftmaxRegression(2, 3, 1);
        // 4 batches an epoch: the 8th step is the last of epoch 2.
        var trainer = new Trainer(net, new Exploding(net.Parameters, 8), new TrainerOptions { Epochs = 3, OutputDirectory = dir });
        var e = Assert.Throws<ArithmeticException>(() => trainer.Fit(new DataLoader(Data(32, 1), 8, seed: 1), null));
        Assert.Contains("epoch 2", e.Message);
        var meta = Checkpoint.Load(Path.Combine(dir, "last.safetensors"), new SoftmaxRegression(2, 3, 2).Parameters);
        Assert.Equal("1", meta["epoch"]);
        var (tensors, _) = SafeTensorsFile.Read(Path.Combine(dir, "last.safetensors"));
        Assert.All(tensors.SelectMany(t => t.ToFloats()), v => Assert.True(float.IsFinite(v) && Math.Abs(v) < 1e6));
    }

    [Fact]
    public void Save_RefusesNonFiniteOrDivergedWeights_WithTheTensorAndIndex()
    {
        var dir = Temp();
        var net = new SoftmaxRegression(2, 3, 1);
        string path = Path.Combine(dir, "c.safetensors");
        Checkpoint.Save(path, net.Parameters);
        var before = File.ReadAllBytes(path);
        net.Parameters.Value(net.Parameters["fc.bias"])[2] = float.NaN;
        Assert.Contains("fc.bias[2] = NaN", Assert.Throws<ArithmeticException>(() => Checkpoint.Save(path, net.Parameters)).Message);
        net.Parameters.Value(net.Parameters["fc.bias"])[2] = 0;
        net.Parameters.Value(net.Parameters["fc.weight"])[4] = 1.8e37f;
        Assert.Contains("fc.weight[4]", Assert.Throws<ArithmeticException>(() => Checkpoint.Save(path, net.Parameters)).Message);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(-1e-3f)]
    public void ANonFiniteOrNegativeLearningRate_IsRefused(float lr)
    {
        var net = new SoftmaxRegression(2, 3, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(net.Parameters, lr));
        var opt = new AdamW(net.Parameters);
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.LearningRate = lr);
    }

    [Fact]
    public void ANaNValidationLoss_IsAnError_NotASilentSkip()
    {
        var net = new SoftmaxRegression(2, 3, 1);
        var trainer = new Trainer(net, new AdamW(net.Parameters), new TrainerOptions { Epochs = 2 });
        var val = Data(8, 3);
        val.Samples[0] = float.NaN; // a poisoned validation sample
        Assert.Contains("validation loss became NaN after epoch 1", Assert.Throws<ArithmeticException>(() => trainer.Fit(new DataLoader(Data(16, 1), 8), new DataLoader(val, 8, shuffle: false))).Message);
    }

    [Fact]
    public void ResumedRuns_StillRestoreTheBestEpoch()
    {
        var train = Data(48, 4);
        var noisy = Data(30, 5);
        new Rng(1).Shuffle(noisy.Labels.AsSpan()); // validation soon stops improving
        var dir = Temp();
        var straight = new SoftmaxRegression(2, 3, 7);
        var t1 = new Trainer(straight, new Sgd(straight.Parameters, 0.5f), new TrainerOptions { Epochs = 8 });
        t1.Fit(new DataLoader(train, 8, seed: 3), new DataLoader(noisy, 30, shuffle: false));

        var first = new SoftmaxRegression(2, 3, 7);
        new Trainer(first, new Sgd(first.Parameters, 0.5f), new TrainerOptions { Epochs = 4, OutputDirectory = dir })
            .Fit(new DataLoader(train, 8, seed: 3), new DataLoader(noisy, 30, shuffle: false));
        var resumed = new SoftmaxRegression(2, 3, 99);
        var t2 = new Trainer(resumed, new Sgd(resumed.Parameters, 0.5f), new TrainerOptions { Epochs = 8, OutputDirectory = dir, Resume = true });
        t2.Fit(new DataLoader(train, 8, seed: 3), new DataLoader(noisy, 30, shuffle: false));
        Assert.Equal(t1.BestEpoch, t2.BestEpoch);
        Assert.True(t1.BestEpoch < 8, "the test needs a best epoch before the last");
        Assert.Equal(straight.Parameters.ReadValues.ToArray(), resumed.Parameters.ReadValues.ToArray());
    }

    [Fact]
    public void ALoadThatFailsOnOptimizerState_LeavesWeightsAndOptimizerUntouched()
    {
        var dir = Temp();
        var source = new SoftmaxRegression(2, 3, 1);
        string path = Path.Combine(dir, "weights-only.safetensors");
        Checkpoint.Save(path, source.Parameters); // no optimizer state in it
        var target = new SoftmaxRegression(2, 3, 2);
        var opt = new AdamW(target.Parameters);
        target.Parameters.Gradients.Fill(0.5f);
        opt.Step();
        var weights = target.Parameters.ReadValues.ToArray();
        var state = opt.ExportState().ToDictionary(e => e.Name, e => e.Data.ToArray());
        Assert.Contains("is missing", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, target.Parameters, opt)).Message);
        Assert.Equal(weights, target.Parameters.ReadValues.ToArray());
        Assert.All(opt.ExportState(), e => Assert.Equal(state[e.Name], e.Data));
    }

    [Fact]
    public void ACheckpointHoldingNaN_IsRefusedOnLoad()
    {
        var dir = Temp();
        var net = new SoftmaxRegression(2, 3, 1);
        string path = Path.Combine(dir, "nan.safetensors");
        var tensors = net.Parameters.All.Select(p => SafeTensor.FromFloats(p.Name, p.Shape.ToArray(), net.Parameters.ReadValue(p).ToArray().Select((v, i) => i == 1 ? float.NaN : v).ToArray())).ToList();
        SafeTensorsFile.Write(path, tensors);
        Assert.Contains("fc.weight[1] is NaN", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, new SoftmaxRegression(2, 3, 2).Parameters)).Message);
    }

    [Fact]
    public void TemporariesOfDeadWriters_AreRemoved_LiveOnesKept()
    {
        var dir = Temp();
        string dead = Path.Combine(dir, $".last.safetensors.{int.MaxValue - 7}.{Guid.NewGuid():N}.tmp");
        string mine = Path.Combine(dir, $".last.safetensors.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        string other = Path.Combine(dir, ".notes.tmp");
        foreach (var f in new[] { dead, mine, other }) File.WriteAllBytes(f, [1, 2, 3]);
        Assert.Equal(1, AtomicFile.RemoveStaleTemporaries(dir));
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(mine) && File.Exists(other));
    }
}
