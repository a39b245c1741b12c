using System.Diagnostics;
using Compiled.Nets.Data;
using Compiled.Nets.Gpu;
using Compiled.Nets.Training;

namespace Compiled.Nets.Samples.BertSpam;

/// <summary>
/// --device gpu|auto|cpu-accelerator: BERT's fine-tuning recipe on a GpuDevice. The network's generated device twin runs
/// every step there (token ids, the attention mask and labels go up; parameters, gradients and AdamW state stay), with
/// the host recipe's linear warm-up and decay, no decay for biases and LayerNorm, global gradient-norm clipping and
/// early stopping on the validation loss; the best epoch's weights come back to the host network, which the program
/// then tests and reports on as after CPU training.
/// </summary>
internal static class DeviceTraining
{
    public static int Fit(ISequenceClassifier net, string kind, TextDataLoader train, TextDataLoader validation, int epochs, int patience,
        LearningRateSchedule schedule, float weightDecay, float maxGradNorm, TextWriter console)
    {
        using var device = GpuDevice.Open(kind);
        console.WriteLine($"Device: {device}");
        using DeviceNetwork twin = net switch
        {
            BertBaseClassifier b => b.ToDevice(device),
            BertTinyClassifier t => t.ToDevice(device),
            _ => throw new ArgumentException($"--device trains the BERT classifiers; {net.Name} trains on the CPU (--device cpu)."),
        };
        using var opt = new DeviceAdamW(twin, schedule.At(0), weightDecay: weightDecay) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        float[]? best = null;
        double bestLoss = double.PositiveInfinity;
        int bestEpoch = 0, sinceBest = 0;
        var logits = new float[train.BatchSize * net.OutputSize];
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            double lossSum = 0; long correct = 0, seen = 0;
            foreach (var b in train.Epoch(epoch - 1))
            {
                opt.LearningRate = schedule.At(opt.StepCount);
                var lg = logits.AsSpan(0, b.Count * net.OutputSize);
                float loss = twin.TrainStep(b.IdSpan, b.LabelSpan, b.MaskSpan, b.Count, b.Sequence, lg);
                if (!float.IsFinite(loss)) throw new ArithmeticException($"The training loss became {loss} in epoch {epoch}; lower the learning rate.");
                if (maxGradNorm > 0) opt.ClipGradientNorm(maxGradNorm);
                opt.Step();
                lossSum += loss * b.Count; seen += b.Count;
                correct += Correct(lg, b.LabelSpan, net.OutputSize);
            }
            var (valLoss, valAccuracy) = Evaluate(twin, validation, net.OutputSize);
            console.WriteLine($"epoch {epoch,2}: train loss {lossSum / seen:F4} acc {correct / (double)seen:P2} | val loss {valLoss:F4} acc {valAccuracy:P2} | {sw.Elapsed.TotalSeconds:F1} s");
            if (valLoss < bestLoss)
            {
                bestLoss = valLoss; bestEpoch = epoch; sinceBest = 0;
                twin.CopyParametersToHost();
                best = net.Parameters.ReadValues.ToArray();
            }
            else if (patience > 0 && ++sinceBest >= patience)
            {
                console.WriteLine($"Early stop after epoch {epoch}: no lower validation loss for {patience} epochs.");
                break;
            }
        }
        if (best is not null) best.CopyTo(net.Parameters.Values);
        console.WriteLine($"Best validation epoch {bestEpoch} (loss {bestLoss:F4}); its weights are back on the host network.");
        return bestEpoch;
    }

    private static (double Loss, double Accuracy) Evaluate(DeviceNetwork twin, TextDataLoader data, int classes)
    {
        var logits = new float[data.BatchSize * classes];
        double lossSum = 0; long correct = 0, seen = 0;
        foreach (var b in data.Epoch(0))
        {
            var lg = logits.AsSpan(0, b.Count * classes);
            float loss = twin.EvaluateLoss(b.IdSpan, b.LabelSpan, b.MaskSpan, b.Count, b.Sequence, lg);
            lossSum += loss * b.Count; seen += b.Count;
            correct += Correct(lg, b.LabelSpan, classes);
        }
        return (lossSum / seen, correct / (double)seen);
    }

    private static int Correct(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (ConfusionMatrix.ArgMax(logits.Slice(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }
}
