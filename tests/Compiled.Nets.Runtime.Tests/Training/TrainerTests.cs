using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Runtime.Tests.Training;

/// <summary>Softmax regression written by hand (its own gradient), to test the trainer without the generator.</summary>
internal sealed class SoftmaxRegression : IClassifier
{
    private readonly int _in, _k;
    public SoftmaxRegression(int inputs, int classes, ulong seed)
    {
        _in = inputs; _k = classes;
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [classes, inputs], ParameterRole.Weight, ParameterInit.Uniform(0.1f));
        b.Add("fc.bias", [classes], ParameterRole.Bias, ParameterInit.Zeros);
        Parameters = b.Build();
        Parameters.Initialize(seed);
    }
    public bool PoisonNextStep;
    public string Name => "SoftmaxRegression";
    public IReadOnlyList<int> InputShape => [_in];
    public int InputSize => _in;
    public IReadOnlyList<int> OutputShape => [_k];
    public int OutputSize => _k;
    public ParameterStore Parameters { get; }

    public void Forward(ReadOnlySpan<float> input, int batch, Span<float> output)
    {
        var w = Parameters.Value(0); var b = Parameters.Value(1);
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < _k; c++)
            {
                float s = b[c];
                for (int i = 0; i < _in; i++) s += w[c * _in + i] * input[n * _in + i];
                output[n * _k + c] = s;
            }
    }

    public float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        var lg = logits.IsEmpty ? new float[batch * _k] : logits;
        Forward(input, batch, lg);
        return Compiled.Nets.Kernels.CrossEntropyKernels.Forward(new float[batch * _k], lg, labels, batch, _k);
    }

    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        Parameters.ZeroGradients();
        var lg = logits.IsEmpty ? new float[batch * _k] : logits;
        Forward(input, batch, lg);
        var probs = new float[batch * _k];
        float loss = Compiled.Nets.Kernels.CrossEntropyKernels.Forward(probs, lg, labels, batch, _k);
        var d = new float[batch * _k];
        Compiled.Nets.Kernels.CrossEntropyKernels.Backward(d, probs, labels, batch, _k, 1f / batch);
        var gw = Parameters.Gradient(0); var gb = Parameters.Gradient(1);
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < _k; c++)
            {
                gb[c] += d[n * _k + c];
                for (int i = 0; i < _in; i++) gw[c * _in + i] += d[n * _k + c] * input[n * _in + i];
            }
        if (PoisonNextStep) { PoisonNextStep = false; return float.NaN; }
        return loss;
    }
}

public class TrainerTests
{
    private static Dataset Blobs(int n, ulong seed)
    {
        var r = new Rng(seed);
        var x = new float[n * 2]; var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 3;
            x[2 * i] = (float)(Math.Cos(y[i] * 2.1) * 2 + r.NextGaussian() * 0.5);
            x[2 * i + 1] = (float)(Math.Sin(y[i] * 2.1) * 2 + r.NextGaussian() * 0.5);
        }
        return new Dataset(x, y, [2], 3);
    }

    [Fact]
    public void Fit_LearnsAndWritesHistory()
    {
        var dir = DataTests_Temp();
        var net = new SoftmaxRegression(2, 3, 1);
        var t = new Trainer(net, new AdamW(net.Parameters, 0.05f), new TrainerOptions { Epochs = 5, OutputDirectory = dir });
        var h = t.Fit(new DataLoader(Blobs(300, 1), 16, seed: 2), new DataLoader(Blobs(90, 3), 32, shuffle: false));
        Assert.True(h[^1].ValidationAccuracy > 0.9, $"val acc {h[^1].ValidationAccuracy}");
        Assert.True(h[^1].TrainLoss < h[0].TrainLoss);
        Assert.True(File.Exists(Path.Combine(dir, "history.csv")) && File.Exists(Path.Combine(dir, "best.safetensors")));
        Assert.Equal(6, File.ReadAllLines(Path.Combine(dir, "history.csv")).Length);
    }

    private static string DataTests_Temp() => Directory.CreateTempSubdirectory("cnets").FullName;

    [Fact]
    public void Resume_GivesTheSameParametersAsAnUninterruptedRun()
    {
        var train = Blobs(200, 4); var val = Blobs(60, 5);
        var straight = new SoftmaxRegression(2, 3, 7);
        new Trainer(straight, new AdamW(straight.Parameters, 0.02f), new TrainerOptions { Epochs = 3, RestoreBest = false })
            .Fit(new DataLoader(train, 16, seed: 9), new DataLoader(val, 32, shuffle: false));

        var dir = DataTests_Temp();
        var first = new SoftmaxRegression(2, 3, 7);
        new Trainer(first, new AdamW(first.Parameters, 0.02f), new TrainerOptions { Epochs = 1, OutputDirectory = dir, RestoreBest = false })
            .Fit(new DataLoader(train, 16, seed: 9), new DataLoader(val, 32, shuffle: false));
        var resumed = new SoftmaxRegression(2, 3, 999); // different init: everything must come from the checkpoint
        new Trainer(resumed, new AdamW(resumed.Parameters, 0.02f), new TrainerOptions { Epochs = 3, OutputDirectory = dir, Resume = true, RestoreBest = false })
            .Fit(new DataLoader(train, 16, seed: 9), new DataLoader(val, 32, shuffle: false));
        Assert.True(straight.Parameters.Values.SequenceEqual(resumed.Parameters.Values));
    }

    [Fact]
    public void EarlyStopping_StopsAndRestoresTheBestEpoch()
    {
        var net = new SoftmaxRegression(2, 3, 1);
        var train = Blobs(120, 1);
        // Validation labels are shuffled noise, so validation loss soon stops improving.
        var noisy = Blobs(60, 2);
        var r = new Rng(1); r.Shuffle(noisy.Labels.AsSpan());
        var observer = new Recorder();
        var t = new Trainer(net, new Sgd(net.Parameters, 0.5f), new TrainerOptions { Epochs = 40, EarlyStoppingPatience = 2 }, observer);
        var h = t.Fit(new DataLoader(train, 8, seed: 3), new DataLoader(noisy, 60, shuffle: false));
        Assert.True(h.Count < 40);
        Assert.Equal(h.Count, t.BestEpoch + 2);
        Assert.Equal(t.BestEpoch, observer.StoppedBest);
        var (loss, _) = Trainer.Evaluate(net, new DataLoader(noisy, 60, shuffle: false));
        Assert.Equal(h[t.BestEpoch - 1].ValidationLoss, loss, 5);
    }

    private sealed class Recorder : ITrainingObserver { public int StoppedBest; public void EarlyStopped(int epoch, int bestEpoch) => StoppedBest = bestEpoch; }

    [Theory]
    [InlineData(0, 0, 0f, "Epochs must be at least 1")]
    [InlineData(-1, 0, 0f, "Epochs must be at least 1")]
    [InlineData(2, -2, 0f, "EarlyStoppingPatience must not be negative")]
    [InlineData(2, 0, -1f, "MaxGradNorm must not be negative")]
    [InlineData(2, 0, float.NaN, "MaxGradNorm must not be negative")]
    public void Options_that_would_train_nothing_or_are_typos_are_refused_before_anything_is_written(int epochs, int patience, float maxNorm, string message)
    {
        var dir = DataTests_Temp();
        var net = new SoftmaxRegression(2, 3, 1);
        var before = net.Parameters.ReadValues.ToArray();
        var t = new Trainer(net, new AdamW(net.Parameters), new TrainerOptions { Epochs = epochs, EarlyStoppingPatience = patience, MaxGradNorm = maxNorm, OutputDirectory = dir });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Fit(new DataLoader(Blobs(32, 1), 8), null));
        Assert.Contains(message, e.Message);
        Assert.False(Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any());
        Assert.Equal(before, net.Parameters.ReadValues.ToArray());
    }

    [Fact]
    public void Loaders_that_yield_nothing_are_refused_instead_of_training_nothing_or_scoring_zero()
    {
        var net = new SoftmaxRegression(2, 3, 1);
        var data = Blobs(30, 1);
        var empty = data.Subset([]);
        var before = net.Parameters.ReadValues.ToArray();
        var t = new Trainer(net, new AdamW(net.Parameters), new TrainerOptions { Epochs = 2 });
        Assert.Contains("training loader yields no batch", Assert.Throws<ArgumentException>(() => t.Fit(new DataLoader(empty, 8), null)).Message);
        Assert.Contains("training loader yields no batch", Assert.Throws<ArgumentException>(() => t.Fit(new DataLoader(data, 64, dropLast: true), null)).Message);
        Assert.Contains("validation loader yields no batch", Assert.Throws<ArgumentException>(() => t.Fit(new DataLoader(data, 8), new DataLoader(empty, 8))).Message);
        Assert.Contains("no sample to evaluate", Assert.Throws<ArgumentException>(() => Trainer.Evaluate(net, new DataLoader(empty, 8))).Message);
        Assert.Equal(before, net.Parameters.ReadValues.ToArray());
    }

    [Fact]
    public void NaNLoss_StopsWithEpochAndBatch()
    {
        var net = new SoftmaxRegression(2, 3, 1);
        var t = new Trainer(net, new AdamW(net.Parameters), new TrainerOptions { Epochs = 2 });
        net.PoisonNextStep = true;
        var ex = Assert.Throws<ArithmeticException>(() => t.Fit(new DataLoader(Blobs(32, 1), 8), null));
        Assert.Contains("epoch 1, batch 1", ex.Message);
    }
}
