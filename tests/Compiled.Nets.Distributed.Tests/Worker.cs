using System.Globalization;
using Compiled.Nets.Data;
using Compiled.Nets.Distributed;
using Compiled.Nets.Network.Tests;
using Compiled.Nets.Training;

namespace Compiled.Nets.Distributed.Tests;

/// <summary>
/// Training scenarios run the same way in one process (the reference) and on every rank of an MPI job: each rank takes
/// its contiguous part of every global batch, gradients are averaged before each AdamW step, and rank 0 writes the
/// per-step global losses and the final weights.
/// </summary>
public static class Worker
{
    private static bool s_kill;

    /// <summary>Entry point under mpirun: <c>scenario outDir steps globalBatch [failAtStep [kill]]</c>.</summary>
    public static int Main(string[] args)
    {
        if (args.Length < 4) { Console.Error.WriteLine("usage: <convnet|minibert> <outDir> <steps> <globalBatch> [failAtStep]"); return 2; }
        using var context = DistributedContext.Initialize();
        OutputDirectory = Path.Combine(args[1], "run");
        int steps = int.Parse(args[2], CultureInfo.InvariantCulture), batch = int.Parse(args[3], CultureInfo.InvariantCulture);
        int failAt = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : -1;
        s_kill = args.Length > 5 && args[5] == "kill";
        var (losses, weights, _) = Run(args[0], context, steps, batch, failAt);
        if (context.IsRoot)
        {
            File.WriteAllLines(Path.Combine(args[1], "losses.txt"), losses.Select(l => l.ToString("R", CultureInfo.InvariantCulture)));
            File.WriteAllBytes(Path.Combine(args[1], "weights.bin"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()).ToArray());
        }
        context.Barrier();
        return 0;
    }

    /// <summary>The output folder of the "trainer" scenarios (the job's ranks share it, as resuming needs).</summary>
    public static string? OutputDirectory { get; set; }

    /// <summary>Runs a scenario: in one process when <paramref name="context"/> is null, else as this rank of the job.
    /// <paramref name="failAt"/> ≥ 0: rank 1 throws at that step (fault tests).</summary>
    public static (double[] Losses, float[] Weights, float[] Initial) Run(string scenario, DistributedContext? context, int steps, int globalBatch, int failAt = -1) => scenario switch
    {
        "convnet" => ConvNetSteps(context, steps, globalBatch, failAt),
        "minibert" => MiniBertSteps(context, steps, globalBatch, frozen: false),
        "minibert-frozen" => MiniBertSteps(context, steps, globalBatch, frozen: true),
        "trainer" => TrainerEpochs(context, steps, globalBatch, resume: false),
        "trainer-resume" => TrainerEpochs(context, steps, globalBatch, resume: true),
        _ => throw new ArgumentException($"No scenario '{scenario}'.", nameof(scenario)),
    };

    private static (double[] Losses, float[] Weights, float[] Initial) ConvNetSteps(DistributedContext? context, int steps, int globalBatch, int failAt)
    {
        // Every rank starts from different weights: the broadcast is what makes them rank 0's.
        using var net = new ConvNet(seed: 7 + (ulong)(context?.Rank ?? 0));
        var dp = context is null ? null : new DataParallel(context, net.Parameters);
        dp?.BroadcastParameters();
        var initial = net.Parameters.ReadValues.ToArray();
        var opt = new AdamW(net.Parameters, 1e-3f);
        // A learnable task (each class a fixed pattern plus noise), so training is stable and the runs comparable.
        var rng = new Rng(11);
        int n = steps * globalBatch, d = ConvNet.InputFeatures;
        var templates = new float[10 * d];
        for (int i = 0; i < templates.Length; i++) templates[i] = rng.NextFloat();
        var x = new float[n * d];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextInt(10);
            for (int j = 0; j < d; j++) x[i * d + j] = templates[labels[i] * d + j] - 0.5f + 0.5f * (rng.NextFloat() - 0.5f);
        }
        var losses = new double[steps];
        for (int s = 0; s < steps; s++)
        {
            if (s == failAt && context?.Rank == 1)
            {
                // A rank that dies without a word (killed) or throws: either way the job must end, not hang.
                if (s_kill) System.Diagnostics.Process.GetCurrentProcess().Kill();
                throw new InvalidOperationException($"rank 1 fails at step {s} (a fault test)");
            }
            var (start, count) = context is null ? (0, globalBatch) : DataParallel.Shard(globalBatch, context.Rank, context.Size);
            int first = s * globalBatch + start;
            float loss = net.TrainStep(x.AsSpan(first * ConvNet.InputFeatures, count * ConvNet.InputFeatures), labels.AsSpan(first, count), count);
            dp?.AverageGradients(count, globalBatch);
            opt.Step();
            losses[s] = dp?.GlobalMean(loss, count) ?? loss;
        }
        return (losses, net.Parameters.ReadValues.ToArray(), initial);
    }

    /// <summary>Class patterns plus noise, centred: a task the seed ConvNet learns in a few steps.</summary>
    private static (float[] X, int[] Labels) Patterns(int n, ulong seed)
    {
        var rng = new Rng(11);
        int d = ConvNet.InputFeatures;
        var templates = new float[10 * d];
        for (int i = 0; i < templates.Length; i++) templates[i] = rng.NextFloat();
        rng = new Rng(seed);
        var x = new float[n * d];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextInt(10);
            for (int j = 0; j < d; j++) x[i * d + j] = templates[labels[i] * d + j] - 0.5f + 0.5f * (rng.NextFloat() - 0.5f);
        }
        return (x, labels);
    }

    /// <summary>The Trainer with loaders, validation and checkpoints: <paramref name="epochs"/> epochs of global batches of
    /// <paramref name="globalBatch"/> (a short last batch included); the metrics of every epoch as the "losses".</summary>
    private static (double[] Losses, float[] Weights, float[] Initial) TrainerEpochs(DistributedContext? context, int epochs, int globalBatch, bool resume)
    {
        using var net = new ConvNet(seed: 7 + (ulong)(context?.Rank ?? 0));
        using var initialNet = new ConvNet(seed: 7);
        var (x, labels) = Patterns(300, 1);
        var (vx, vlabels) = Patterns(70, 2);
        var train = new Dataset(x, labels, [1, 28, 28], 10);
        var validation = new Dataset(vx, vlabels, [1, 28, 28], 10);
        var options = new TrainerOptions
        {
            Epochs = epochs, OutputDirectory = OutputDirectory, Resume = resume, RestoreBest = false,
            DataParallel = context is null ? null : new DataParallel(context, net.Parameters),
        };
        var history = new Trainer(net, new AdamW(net.Parameters, 1e-3f), options).Fit(new DataLoader(train, globalBatch, seed: 3), new DataLoader(validation, globalBatch, shuffle: false));
        var metrics = history.SelectMany(m => new[] { m.TrainLoss, m.TrainAccuracy, m.ValidationLoss, m.ValidationAccuracy }).ToArray();
        return (metrics, net.Parameters.ReadValues.ToArray(), initialNet.Parameters.ReadValues.ToArray());
    }

    private static (double[] Losses, float[] Weights, float[] Initial) MiniBertSteps(DistributedContext? context, int steps, int globalBatch, bool frozen)
    {
        using var net = new MiniBert(seed: 3 + (ulong)(context?.Rank ?? 0));
        // Frozen tensors between trainable ones: the allreduce runs over the trainable stretches only.
        if (frozen) net.Parameters.Freeze("embeddings.", "encoder.layer.0.attention.");
        var dp = context is null ? null : new DataParallel(context, net.Parameters);
        dp?.BroadcastParameters();
        var initial = net.Parameters.ReadValues.ToArray();
        var opt = new AdamW(net.Parameters, 2e-3f);
        const int T = 10, Batches = 4; // four global batches, seen in turn: enough to learn in 20 steps
        var rng = new Rng(5);
        int n = Batches * globalBatch;
        var ids = new int[n * T];
        var mask = new int[n * T];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int length = 3 + rng.NextInt(T - 2); // padded sequences: the mask matters
            for (int t = 0; t < T; t++) { ids[i * T + t] = t < length ? 1 + rng.NextInt(49) : 0; mask[i * T + t] = t < length ? 1 : 0; }
            labels[i] = ids[i * T + 1] % 3; // learnable: the class is in the first word
        }
        var losses = new double[steps];
        for (int s = 0; s < steps; s++)
        {
            var (start, count) = context is null ? (0, globalBatch) : DataParallel.Shard(globalBatch, context.Rank, context.Size);
            int first = s % Batches * globalBatch + start;
            float loss = net.TrainStep(ids.AsSpan(first * T, count * T), labels.AsSpan(first, count), mask.AsSpan(first * T, count * T), count, T);
            dp?.AverageGradients(count, globalBatch);
            opt.Step();
            losses[s] = dp?.GlobalMean(loss, count) ?? loss;
        }
        return (losses, net.Parameters.ReadValues.ToArray(), initial);
    }
}
