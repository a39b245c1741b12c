using System.Runtime.CompilerServices;
using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>End to end on real data: the compiled ConvNet learns Fashion-MNIST (the subset shipped with the sample).</summary>
public class RealDataTests
{
    private static string DataDir([CallerFilePath] string path = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", "..", "samples", "FashionMnist", "data"));

    [Fact]
    public void ConvNet_TrainedBrieflyOnRealFashionMnist_GainsClearAccuracy()
    {
        string d = DataDir();
        var train = DatasetReaders.ReadIdx(Path.Combine(d, "train-images-idx3-ubyte.gz"), Path.Combine(d, "train-labels-idx1-ubyte.gz"), 10).Take(1500);
        var test = DatasetReaders.ReadIdx(Path.Combine(d, "t10k-images-idx3-ubyte.gz"), Path.Combine(d, "t10k-labels-idx1-ubyte.gz"), 10).Take(500);
        var (mean, std) = train.ChannelStatistics();
        train.Normalize(mean, std); test.Normalize(mean, std);

        using var net = new ConvNet(seed: 42);
        var testLoader = new DataLoader(test, 100, shuffle: false);
        var (_, before) = Trainer.Evaluate(net, testLoader);
        var trainer = new Trainer(net, new AdamW(net.Parameters, 1e-3f), new TrainerOptions { Epochs = 1 });
        trainer.Fit(new DataLoader(train, 32, seed: 1), null);
        var confusion = new ConfusionMatrix(10);
        var (_, after) = Trainer.Evaluate(net, testLoader, confusion);

        Assert.InRange(before, 0.0, 0.3);          // an untrained net is near chance (10 classes)
        Assert.True(after > 0.65, $"test accuracy {after:P1} after one short epoch (before: {before:P1})");
        Assert.Equal(500, confusion.Total);        // accuracy is over samples, not batches
    }
}
