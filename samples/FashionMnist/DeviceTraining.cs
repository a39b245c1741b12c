using System.Diagnostics;
using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Gpu;
using Compiled.Nets.Training;

namespace Compiled.Nets.Samples.FashionMnist;

/// <summary>
/// --device gpu|auto|cpu-accelerator: the same recipe on a GpuDevice. The network's generated device twin runs every
/// training step there (parameters, gradients and AdamW state stay on the device); validation runs on the device
/// too; the best epoch's weights come back to the host network, which the rest of the program tests and saves.
/// </summary>
internal static class DeviceTraining
{
    public static void Fit(IClassifier net, string kind, DataLoader train, DataLoader validation, int epochs, int patience, float lr, string optimizer)
    {
        using var device = GpuDevice.Open(kind);
        Console.WriteLine($"Device: {device}");
        using DeviceNetwork twin = net switch
        {
            ConvNet c => c.ToDevice(device),
            ResNet r => r.ToDevice(device),
            _ => throw new NotSupportedException(net.Name),
        };
        using DeviceOptimizer opt = optimizer switch
        {
            "adam" => new DeviceAdam(twin, lr),
            "sgd" => new DeviceSgd(twin, lr, momentum: 0.9f, nesterov: true),
            _ => new DeviceAdamW(twin, lr),
        };
        float[]? best = null;
        double bestAccuracy = -1;
        int bestEpoch = 0, sinceBest = 0;
        var logits = new float[train.BatchSize * net.OutputSize];
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            double lossSum = 0; long correct = 0, seen = 0;
            foreach (var b in train.Epoch(epoch))
            {
                float loss = twin.TrainStep(b.InputSpan, b.LabelSpan, b.Count, logits.AsSpan(0, b.Count * net.OutputSize));
                opt.Step();
                lossSum += loss * b.Count; seen += b.Count;
                correct += Correct(logits, b.LabelSpan, net.OutputSize);
            }
            var (valLoss, valAccuracy) = Evaluate(twin, validation, net.OutputSize);
            Console.WriteLine($"epoch {epoch,2}: train loss {lossSum / seen:F4} acc {correct / (double)seen:P2} | val loss {valLoss:F4} acc {valAccuracy:P2} | {sw.Elapsed.TotalSeconds:F1} s");
            if (valAccuracy > bestAccuracy)
            {
                bestAccuracy = valAccuracy; bestEpoch = epoch; sinceBest = 0;
                twin.CopyParametersToHost();
                best = net.Parameters.ReadValues.ToArray();
            }
            else if (patience > 0 && ++sinceBest >= patience)
            {
                Console.WriteLine($"Early stop after epoch {epoch}: no better validation accuracy for {patience} epochs.");
                break;
            }
        }
        if (best is not null) best.CopyTo(net.Parameters.Values);
        Console.WriteLine($"Best validation epoch {bestEpoch} ({bestAccuracy:P2}); its weights are back on the host network.");
    }

    private static (double Loss, double Accuracy) Evaluate(DeviceNetwork twin, DataLoader data, int classes)
    {
        var logits = new float[data.BatchSize * classes];
        double lossSum = 0; long correct = 0, seen = 0;
        foreach (var b in data.Epoch(0))
        {
            float loss = twin.EvaluateLoss(b.InputSpan, b.LabelSpan, b.Count, logits.AsSpan(0, b.Count * classes));
            lossSum += loss * b.Count; seen += b.Count;
            correct += Correct(logits, b.LabelSpan, classes);
        }
        return (lossSum / seen, correct / (double)seen);
    }

    private static int Correct(float[] logits, ReadOnlySpan<int> labels, int classes)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (ConfusionMatrix.ArgMax(logits.AsSpan(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }
}
