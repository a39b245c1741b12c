using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>Text batches (dynamic padding + mask) and the trainer driving a compiled transformer.</summary>
public class TextTrainingTests
{
    // Class 1 when the text contains token 7, else class 2 when it contains 9, else class 0: position-independent
    // keyword detection, which needs attention across the sequence (the [CLS] position alone carries no information).
    private static TextDataset Synthetic(int count, ulong seed)
    {
        var r = new Rng(seed);
        var ids = new List<int[]>(); var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int len = 3 + r.NextInt(10);
            var s = new int[len];
            s[0] = 1; // [CLS]
            for (int t = 1; t < len; t++) { int v; do v = 2 + r.NextInt(48); while (v is 7 or 9); s[t] = v; }
            int kind = r.NextInt(3);
            if (kind == 1) s[1 + r.NextInt(len - 1)] = 7;
            if (kind == 2) s[1 + r.NextInt(len - 1)] = 9;
            ids.Add(s); labels[i] = kind;
        }
        return new TextDataset(ids, labels, 3, ["none", "seven", "nine"]);
    }

    [Fact]
    public void TextDataLoader_PadsEachBatchToItsLongest_WithTheMask_InASeededOrder()
    {
        var data = new TextDataset([[1, 2, 3], [1, 4], [1, 5, 6, 7, 8], [1]], [0, 1, 0, 1], 2);
        var loader = new TextDataLoader(data, batchSize: 2, maxLength: 6, shuffle: false, padId: 0);
        var batches = loader.Epoch(0).Select(b => (b.Sequence, Ids: b.IdSpan.ToArray(), Mask: b.MaskSpan.ToArray(), Labels: b.LabelSpan.ToArray())).ToList();
        Assert.Equal(2, batches.Count);
        Assert.Equal(3, batches[0].Sequence);
        Assert.Equal([1, 2, 3, 1, 4, 0], batches[0].Ids);
        Assert.Equal([1, 1, 1, 1, 1, 0], batches[0].Mask);
        Assert.Equal(5, batches[1].Sequence);
        Assert.Equal([1, 5, 6, 7, 8, 1, 0, 0, 0, 0], batches[1].Ids);
        Assert.Equal([0, 1], batches[0].Labels.Take(2).ToArray());

        var shuffled = new TextDataLoader(data, 3, 6, shuffle: true, seed: 5);
        var first = shuffled.Epoch(2).SelectMany(b => b.LabelSpan.ToArray().Zip(Enumerable.Range(0, b.Count), (l, i) => b.Ids[i * b.Sequence + 1])).ToArray();
        var again = shuffled.Epoch(2).SelectMany(b => b.LabelSpan.ToArray().Zip(Enumerable.Range(0, b.Count), (l, i) => b.Ids[i * b.Sequence + 1])).ToArray();
        Assert.Equal(first, again);

        var ex = Assert.Throws<ArgumentException>(() => new TextDataLoader(data, 2, maxLength: 4));
        Assert.Contains("Sample 2 has 5 tokens", ex.Message);
    }

    [Fact]
    public void Trainer_LearnsKeywordDetection_WithMiniBert_AndEvaluatesOverSamples()
    {
        var all = Synthetic(480, 11);
        var (train, val) = all.Split(0.25, 3);
        using var net = new MiniBert(seed: 3);
        var opt = new AdamW(net.Parameters, lr: 3e-3f);
        var trainer = new Trainer(net, opt, new TrainerOptions { Epochs = 12, EarlyStoppingPatience = 0 });
        var history = trainer.Fit(new TextDataLoader(train, 16, 12, seed: 1), new TextDataLoader(val, 64, 12, shuffle: false));
        Assert.Equal(12, history.Count);
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss * 0.5, $"train loss {history[0].TrainLoss:F3} → {history[^1].TrainLoss:F3}");
        var confusion = new ConfusionMatrix(3);
        var (_, accuracy) = Trainer.Evaluate(net, new TextDataLoader(val, 50, 12, shuffle: false), confusion);
        Assert.Equal(val.Count, confusion.Total);
        Assert.True(accuracy > 0.85, $"validation accuracy {accuracy:P1} (chance ≈ 33 %)");
        // A text trainer refuses image loaders and vice versa, by name.
        var ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new DataLoader(new Dataset(new float[4], [0], [4], 3), 1), null));
        Assert.Contains("MiniBert", ex.Message);
    }

    [Fact]
    public void Trainer_LearnsKeywordDetection_WithRecurrentNets()
    {
        // The same task through a stacked bidirectional LSTM and through two GRUs: position-independent keywords
        // in padded batches of different lengths.
        var all = Synthetic(480, 11);
        var (train, val) = all.Split(0.25, 3);
        using var lstm = new LstmNet(seed: 3);
        using var gru = new GruNet(seed: 3);
        foreach (ISequenceClassifier net in new ISequenceClassifier[] { lstm, gru })
        {
            var trainer = new Trainer(net, new AdamW(net.Parameters, lr: 1e-2f), new TrainerOptions { Epochs = 12, EarlyStoppingPatience = 0 });
            var history = trainer.Fit(new TextDataLoader(train, 16, 12, seed: 1), new TextDataLoader(val, 64, 12, shuffle: false));
            Assert.True(history[^1].TrainLoss < history[0].TrainLoss * 0.5, $"{net.Name}: train loss {history[0].TrainLoss:F3} → {history[^1].TrainLoss:F3}");
            var (_, accuracy) = Trainer.Evaluate(net, new TextDataLoader(val, 50, 12, shuffle: false));
            Assert.True(accuracy > 0.85, $"{net.Name}: validation accuracy {accuracy:P1} (chance ≈ 33 %)");
        }
    }
}
