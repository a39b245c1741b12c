using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// The Trainer with networks of several inputs or outputs (IMultiNetwork), fed by TensorDataLoaders of named columns:
/// checked against the same steps taken by hand through the class's own TrainStep.
/// </summary>
public class MultiNetworkTrainingTests
{
    /// <summary>8×8 images of three classes (the bright third: top, middle or bottom rows) and a box target per image:
    /// the bright band's mean row and column, and two constants, in (0, 1).</summary>
    private static TensorDataset Images(int count, ulong seed)
    {
        var r = new Rng(seed);
        var x = new float[count * 64];
        var labels = new int[count];
        var boxes = new float[count * 4];
        for (int i = 0; i < count; i++)
        {
            int c = (int)(r.NextFloat() * 3) % 3;
            labels[i] = c;
            for (int p = 0; p < 64; p++)
            {
                int row = p / 8;
                x[i * 64 + p] = 0.3f * (r.NextFloat() - 0.5f) + (row * 3 / 8 == c ? 1f : 0f);
            }
            boxes[i * 4] = (c + 0.5f) / 3; boxes[i * 4 + 1] = 0.5f; boxes[i * 4 + 2] = 0.25f; boxes[i * 4 + 3] = 0.75f;
        }
        return new TensorDataset(count).Add("input", x, 1, 8, 8).Add("digitLabels", labels).Add("boxTargets", boxes, 4);
    }

    [Fact]
    public void Trainer_TrainsTwoHeads_ExactlyAsTrainStepByHand_AndReportsEachLoss()
    {
        var data = Images(96, 1);
        const int epochs = 3;
        using var viaTrainer = new TwoHeadNet(seed: 4);
        string dir = Path.Combine(Path.GetTempPath(), $"cnet-multi-{Guid.NewGuid():N}");
        var trainer = new Trainer(viaTrainer, new AdamW(viaTrainer.Parameters, 3e-3f), new TrainerOptions { Epochs = epochs, RestoreBest = false, OutputDirectory = dir });
        IReadOnlyList<EpochMetrics> history;
        try
        {
            history = trainer.Fit(new TensorDataLoader(data, 20, seed: 7), null);
            // history.json keeps each loss per epoch.
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "history.json")));
            var first = json.RootElement[0].GetProperty("train_losses");
            Assert.Equal([history[0].TrainLosses[0], history[0].TrainLosses[1]], first.EnumerateArray().Select(v => v.GetDouble()));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

        // The same epochs by hand: the loader's batches through the class's TrainStep, one optimizer step each.
        using var byHand = new TwoHeadNet(seed: 4);
        var opt = new AdamW(byHand.Parameters, 3e-3f);
        var loader = new TensorDataLoader(data, 20, seed: 7);
        var losses = new float[2];
        for (int e = 0; e < epochs; e++)
        {
            double sum = 0, ce = 0, box = 0; int seen = 0, correct = 0;
            foreach (var b in loader.Epoch(e))
            {
                var digits = new float[b.Count * 3];
                float loss = byHand.TrainStep(b.Floats("input", 64), b.Integers("digitLabels", 1), b.Floats("boxTargets", 4), b.Count, digit: digits, losses: losses);
                opt.Step();
                sum += (double)loss * b.Count; ce += (double)losses[0] * b.Count; box += (double)losses[1] * b.Count; seen += b.Count;
                var labels = b.Integers("digitLabels", 1);
                for (int i = 0; i < b.Count; i++) if (ConfusionMatrix.ArgMax(digits.AsSpan(i * 3, 3)) == labels[i]) correct++;
            }
            Assert.Equal(sum / seen, history[e].TrainLoss, 12);
            Assert.Equal([ce / seen, box / seen], history[e].TrainLosses);
            Assert.Equal((double)correct / seen, history[e].TrainAccuracy);
        }
        for (int p = 0; p < byHand.Parameters.Parameters.Count; p++)
            Assert.Equal(byHand.Parameters.Value(byHand.Parameters.Parameters[p]).ToArray(), viaTrainer.Parameters.Value(viaTrainer.Parameters.Parameters[p]).ToArray());
        Assert.Equal(history[0].TrainLoss, history[0].TrainLosses[0] + 0.5 * history[0].TrainLosses[1], 6); // the weighted sum
    }

    [Fact]
    public void Trainer_FitsTwoInputs_WithValidation_AndEvaluatesAsEvaluateLoss()
    {
        // TwoInputNet: an 8×8 image and 4 features; the class is the bright band of the image, or (feature 0 > 0.5) class 2.
        var r = new Rng(3);
        var images = Images(240, 2);
        var labels = images["digitLabels"].Integers!.ToArray();
        var meta = new float[240 * 4];
        for (int i = 0; i < 240; i++)
        {
            for (int j = 0; j < 4; j++) meta[i * 4 + j] = r.NextFloat() * 0.5f;
            if (i % 4 == 0) { meta[i * 4] = 0.9f; labels[i] = 2; }
        }
        var data = new TensorDataset(240).Add("image", images["input"].Floats!, 1, 8, 8).Add("meta", meta, 4).Add("labels", labels);
        var (train, validation) = data.Split(0.25, 5, stratifyBy: "labels");
        Assert.Equal((180, 60), (train.Count, validation.Count));

        using var net = new TwoInputNet(seed: 1);
        IMultiNetwork multi = net;
        Assert.Equal(["image", "meta"], multi.Inputs.Select(i => i.Name));
        Assert.Equal([1, 8, 8], multi.Inputs[0].Shape);
        Assert.Equal(("logits", 3), (multi.Outputs[0].Name, multi.Outputs[0].Size));
        Assert.Equal(new LossSlot("CrossEntropyLoss", "logits", multi.Losses[0].Targets, 1f), multi.Losses[0]);
        Assert.Equal(("labels", true, 1), (multi.Losses[0].Targets.Name, multi.Losses[0].Targets.IsInteger, multi.Losses[0].Targets.Size));

        var history = new Trainer(net, new AdamW(net.Parameters, 1e-2f), new TrainerOptions { Epochs = 20 })
            .Fit(new TensorDataLoader(train, 32, seed: 1), new TensorDataLoader(validation, 25, shuffle: false));
        Assert.True(history[^1].ValidationAccuracy > 0.9, $"validation accuracy {history[^1].ValidationAccuracy:P1}");
        Assert.Empty(history[^1].TrainLosses); // one loss: its value is TrainLoss

        // Evaluate: the loss over the samples as the class's EvaluateLoss gives it, and the accuracy of its logits.
        var (loss, accuracy, losses) = Trainer.Evaluate(net, new TensorDataLoader(validation, 60, shuffle: false));
        var logits = new float[60 * 3];
        var v = validation;
        float direct = net.EvaluateLoss(v["image"].Floats!, v["meta"].Floats!, v["labels"].Integers!, 60, logits);
        Assert.Equal(direct, loss, 5);
        int correct = Enumerable.Range(0, 60).Count(i => ConfusionMatrix.ArgMax(logits.AsSpan(i * 3, 3)) == v["labels"].Integers![i]);
        Assert.Equal(correct / 60.0, accuracy);
        Assert.Empty(losses);
        Assert.Equal(history.Min(m => m.ValidationLoss), loss, 5); // the best epoch was restored
    }

    [Fact]
    public void ColumnsThatDoNotFit_AreRefusedByName_BeforeAnyStep()
    {
        using var net = new TwoHeadNet();
        var trainer = new Trainer(net, new AdamW(net.Parameters, 1e-3f), new TrainerOptions { Epochs = 1 });
        var good = Images(8, 1);
        var noBox = new TensorDataset(8).Add("input", good["input"].Floats!, 1, 8, 8).Add("digitLabels", good["digitLabels"].Integers!);
        var ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new TensorDataLoader(noBox, 4), null));
        Assert.Equal("TwoHeadNet reads a column 'boxTargets' (floats [4] per sample), but the dataset has 'input', 'digitLabels'.", ex.Message);
        var floatLabels = new TensorDataset(8).Add("input", good["input"].Floats!, 1, 8, 8).Add("digitLabels", new float[8]).Add("boxTargets", good["boxTargets"].Floats!, 4);
        ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new TensorDataLoader(floatLabels, 4), null));
        Assert.Equal("TwoHeadNet reads column 'digitLabels' as integers [] per sample, but it holds floats [].", ex.Message);
        var wide = new TensorDataset(8).Add("input", new float[8 * 49], 1, 7, 7).Add("digitLabels", new int[8]).Add("boxTargets", good["boxTargets"].Floats!, 4);
        ex = Assert.Throws<InvalidOperationException>(() => trainer.Fit(new TensorDataLoader(wide, 4), null));
        Assert.Equal("TwoHeadNet reads column 'input' as floats [1, 8, 8] per sample, but it holds floats [1, 7, 7].", ex.Message);
        Assert.Equal(0, net.Parameters.Parameters.Count(p => net.Parameters.Gradient(p).IndexOfAnyExcept(0f) >= 0)); // no step ran

        // A label outside the classes is the network's own error, naming it.
        var badLabel = new TensorDataset(8).Add("input", good["input"].Floats!, 1, 8, 8).Add("digitLabels", [0, 1, 2, 7, 0, 1, 2, 0]).Add("boxTargets", good["boxTargets"].Floats!, 4);
        Assert.Contains("7", Assert.ThrowsAny<ArgumentException>(() => trainer.Fit(new TensorDataLoader(badLabel, 8, shuffle: false), null)).Message);

        // The loaders of one-input networks are not its loaders, and the other way round.
        Assert.Equal("TwoHeadNet has several inputs or outputs: train it with TensorDataLoaders.",
            Assert.Throws<InvalidOperationException>(() => trainer.Fit(new DataLoader(new Dataset(new float[64], [0], [1, 8, 8], 3), 1), null)).Message);
        using var mlp = new Mlp();
        Assert.Equal("Mlp has one input and one output: train it with DataLoaders or TextDataLoaders.",
            Assert.Throws<InvalidOperationException>(() => new Trainer(mlp, new AdamW(mlp.Parameters, 1e-3f), new TrainerOptions()).Fit(new TensorDataLoader(good, 4), null)).Message);

        // The interface's own checks: too few output buffers, a buffer too short, a losses span of the wrong size.
        IMultiNetwork multi = net;
        var batch = new TensorDataLoader(good, 8, shuffle: false).Epoch(0).First();
        float[][] outputs = [new float[24], new float[32], new float[128]];
        Assert.Contains("2 output buffers given, but output 'features' is number 3", Assert.Throws<ArgumentException>(() => multi.EvaluateLoss(batch, outputs[..2], default)).Message);
        Assert.Contains("the buffer of output 'box' has 31 floats, but batch 8 × 4 needs 32", Assert.Throws<ArgumentException>(() => multi.EvaluateLoss(batch, [outputs[0], new float[31], outputs[2]], default)).Message);
        Assert.Contains("losses has 1 values, but the network has 2 losses", Assert.Throws<ArgumentException>(() => multi.EvaluateLoss(batch, outputs, new float[1])).Message);
    }

    [Fact]
    public void TensorDataset_ChecksItsColumns_AndItsLoaderBatchesAsDataLoaderDoes()
    {
        Assert.Contains("4 samples shaped [2] need 8 values, got 7", Assert.Throws<ArgumentException>(() => new TensorDataset(4).Add("x", new float[7], 2)).Message);
        Assert.Contains("value 1 of sample 1 is NaN", Assert.Throws<ArgumentException>(() => new TensorDataset(2).Add("x", [0f, 0f, 0f, float.NaN], 2)).Message);
        Assert.Contains("already has a column 'x'", Assert.Throws<ArgumentException>(() => new TensorDataset(1).Add("x", [1f]).Add("x", [1])).Message);
        Assert.Contains("every dimension must be positive", Assert.Throws<ArgumentException>(() => new TensorDataset(0).Add("x", new float[0], 0)).Message);
        Assert.Contains("has no column 'y'; it has 'x'", Assert.Throws<KeyNotFoundException>(() => new TensorDataset(1).Add("x", [1f])["y"]).Message);

        // Seeded order as DataLoader's, rank parts that together make each global batch.
        const int n = 23;
        var values = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var data = new TensorDataset(n).Add("x", values).Add("id", Enumerable.Range(0, n).ToArray());
        var loader = new TensorDataLoader(data, 5, seed: 9);
        var classic = new DataLoader(new Dataset(values, new int[n], [1], 1), 5, seed: 9);
        Assert.Equal(classic.Order(2), loader.Order(2));
        var whole = loader.Epoch(2).Select(b => b.Integers("id", 1).ToArray()).ToList();
        Assert.Equal(5, whole.Count);
        Assert.Equal(classic.Order(2), whole.SelectMany(b => b));
        var parts = Enumerable.Range(0, 2).Select(r => loader.ForRank(r, 2).Epoch(2).Select(b => (b.Integers("id", 1).ToArray(), b.GlobalCount)).ToList()).ToList();
        for (int b = 0; b < whole.Count; b++)
        {
            Assert.Equal(whole[b], parts[0][b].Item1.Concat(parts[1][b].Item1));
            Assert.Equal(whole[b].Length, parts[1][b].GlobalCount);
        }
        Assert.Equal(4, new TensorDataLoader(data, 5, dropLast: true).Epoch(0).Count());
        Assert.Equal(values.Select(v => (float)v), new TensorDataLoader(data, 23, shuffle: false).Epoch(0).Single().Floats("x", 1).ToArray());
        Assert.Equal("Column 'x' has 1 values per sample (shape []), but 2 are read from it.",
            Assert.Throws<InvalidOperationException>(() => loader.Epoch(0).First().Floats("x", 2).Length).Message);
    }

    [Fact]
    public void Trainer_TrainsASequenceNetworkOfTwoInputsAndTwoHeads_BatchesCutToTheirLongestRow()
    {
        // PairTwoHeadNet: token ids and types over T ≤ 10, per-token targets [T, 2] and a sentence class; rows padded to 10.
        const int n = 30, positions = 10;
        var r = new Rng(4);
        var ids = new int[n * positions]; var types = new int[n * positions]; var mask = new int[n * positions];
        var labels = new int[n]; var tokenTargets = new float[n * positions * 2];
        for (int i = 0; i < n; i++)
        {
            int length = 2 + i % 7; // 2..8: no batch reaches 10, so every batch is cut
            labels[i] = i % 3;
            for (int t = 0; t < length; t++)
            {
                ids[i * positions + t] = r.NextInt(50); types[i * positions + t] = t < length / 2 ? 0 : 1; mask[i * positions + t] = 1;
                tokenTargets[(i * positions + t) * 2] = r.NextFloat(); tokenTargets[(i * positions + t) * 2 + 1] = -r.NextFloat();
            }
        }
        var data = new TensorDataset(n).Add("ids", ids, positions).Add("types", types, positions).Add("attention_mask", mask, positions)
            .Add("sentenceLabels", labels).Add("tokensTargets", tokenTargets, positions, 2);
        using var viaTrainer = new PairTwoHeadNet(seed: 6);
        IMultiNetwork multi = viaTrainer;
        Assert.Equal(10, multi.MaxSequence);
        Assert.True(multi.Inputs[0].IsSequence && multi.Outputs[0].IsSequence && !multi.Outputs[1].IsSequence);
        var history = new Trainer(viaTrainer, new AdamW(viaTrainer.Parameters, 5e-3f), new TrainerOptions { Epochs = 2, RestoreBest = false })
            .Fit(new TensorDataLoader(data, 8, seed: 2), null);

        // By hand: each batch's rows cut to its longest real row, through the class's TrainStep.
        using var byHand = new PairTwoHeadNet(seed: 6);
        var opt = new AdamW(byHand.Parameters, 5e-3f);
        var loader = new TensorDataLoader(data, 8, seed: 2);
        for (int e = 0; e < 2; e++)
        {
            var order = loader.Order(e);
            double sum = 0;
            for (int start = 0; start < n; start += 8)
            {
                var rows = order.Skip(start).Take(8).ToArray();
                int seq = rows.Max(i => Enumerable.Range(0, positions).Last(t => t == 0 || mask[i * positions + t] != 0) + 1);
                int[] Cut(int[] a) => rows.SelectMany(i => a.Skip(i * positions).Take(seq)).ToArray();
                var targets = rows.SelectMany(i => tokenTargets.Skip(i * positions * 2).Take(seq * 2)).ToArray();
                float loss = byHand.TrainStep(Cut(ids), Cut(types), rows.Select(i => labels[i]).ToArray(), targets, Cut(mask), rows.Length, seq,
                    new float[rows.Length * seq * 2], new float[rows.Length * 3]);
                opt.Step();
                sum += (double)loss * rows.Length;
            }
            Assert.Equal(sum / n, history[e].TrainLoss, 10);
        }
        for (int p = 0; p < byHand.Parameters.Parameters.Count; p++)
            Assert.Equal(byHand.Parameters.Value(byHand.Parameters.Parameters[p]).ToArray(), viaTrainer.Parameters.Value(viaTrainer.Parameters.Parameters[p]).ToArray());

        // Without its mask column the data are refused before a step.
        var noMask = new TensorDataset(n).Add("ids", ids, positions).Add("types", types, positions).Add("sentenceLabels", labels).Add("tokensTargets", tokenTargets, positions, 2);
        Assert.Equal("PairTwoHeadNet reads a column 'attention_mask' (integers [T] per sample), but the dataset has 'ids', 'types', 'sentenceLabels', 'tokensTargets'.",
            Assert.Throws<InvalidOperationException>(() => new Trainer(viaTrainer, opt, new TrainerOptions { Epochs = 1 }).Fit(new TensorDataLoader(noMask, 8), null)).Message);
    }
}
