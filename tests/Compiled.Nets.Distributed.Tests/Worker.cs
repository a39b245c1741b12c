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
    /// <paramref name="failAt"/> ≥ 0: rank 1 throws at that step (fault tests).
    /// <paramref name="halves"/>: in one process, each global batch as the ranks' two parts one after the other, their
    /// gradients combined as the allreduce combines them (the same arithmetic regrouped, without MPI).</summary>
    public static (double[] Losses, float[] Weights, float[] Initial) Run(string scenario, DistributedContext? context, int steps, int globalBatch, int failAt = -1, bool halves = false) => scenario switch
    {
        "convnet" => ConvNetSteps(context, steps, globalBatch, failAt, halves),
        "minibert" => MiniBertSteps(context, steps, globalBatch, frozen: false, halves),
        "minibert-frozen" => MiniBertSteps(context, steps, globalBatch, frozen: true, halves),
        "trainer" => TrainerEpochs(context, steps, globalBatch, resume: false),
        "trainer-resume" => TrainerEpochs(context, steps, globalBatch, resume: true),
        "device-trainer" => DeviceTrainerEpochs(context, steps, globalBatch),
        _ => throw new ArgumentException($"No scenario '{scenario}'.", nameof(scenario)),
    };

    private static (double[] Losses, float[] Weights, float[] Initial) ConvNetSteps(DistributedContext? context, int steps, int globalBatch, int failAt, bool halves)
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
            float Step(int at, int n) => net.TrainStep(x.AsSpan(at * ConvNet.InputFeatures, n * ConvNet.InputFeatures), labels.AsSpan(at, n), n);
            float loss = halves ? InTwoParts(net.Parameters, first, globalBatch, Step) : Step(first, count);
            dp?.AverageGradients(count, globalBatch);
            opt.Step();
            losses[s] = dp?.GlobalMean(loss, count) ?? loss;
        }
        return (losses, net.Parameters.ReadValues.ToArray(), initial);
    }

    /// <summary>One global batch as two ranks' parts in one process: gradient = (n₀·g₀ + n₁·g₁) / N, as the allreduce forms it.</summary>
    private static float InTwoParts(ParameterStore store, int first, int globalBatch, Func<int, int, float> step)
    {
        var (_, n0) = DataParallel.Shard(globalBatch, 0, 2);
        int n1 = globalBatch - n0;
        float l0 = step(first, n0);
        var g0 = store.Gradients.ToArray();
        float l1 = step(first + n0, n1);
        var g = store.Gradients;
        for (int i = 0; i < g.Length; i++) g[i] = (float)n0 / globalBatch * g0[i] + (float)n1 / globalBatch * g[i];
        return (l0 * n0 + l1 * n1) / globalBatch;
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

    /// <summary>The Trainer over a device twin (ILGPU's CPU accelerator) with its device AdamW: the gradients go to the
    /// host store for the allreduce and back; the metrics of every epoch as the "losses", the final weights from the device.</summary>
    private static (double[] Losses, float[] Weights, float[] Initial) DeviceTrainerEpochs(DistributedContext? context, int epochs, int globalBatch)
    {
        using var net = new TinyMlp(seed: 7 + (ulong)(context?.Rank ?? 0));
        using var initialNet = new TinyMlp(seed: 7);
        using var device = Gpu.GpuDevice.Open("cpu-accelerator");
        using var twin = net.ToDevice(device);
        using var opt = new Gpu.DeviceAdamW(twin, 1e-2f);
        var (x, labels) = Clusters(160, 1);
        var (vx, vlabels) = Clusters(40, 2);
        var options = new TrainerOptions
        {
            Epochs = epochs, RestoreBest = false,
            DataParallel = context is null ? null : new DataParallel(context, twin.HostParameters),
        };
        var history = new Trainer(twin, opt, options).Fit(
            new DataLoader(new Dataset(x, labels, [TinyMlp.InputFeatures], 4), globalBatch, seed: 3),
            new DataLoader(new Dataset(vx, vlabels, [TinyMlp.InputFeatures], 4), globalBatch, shuffle: false));
        opt.ParametersToStore();
        var metrics = history.SelectMany(m => new[] { m.TrainLoss, m.TrainAccuracy, m.ValidationLoss, m.ValidationAccuracy }).ToArray();
        return (metrics, net.Parameters.ReadValues.ToArray(), initialNet.Parameters.ReadValues.ToArray());
    }

    /// <summary>Four noisy clusters in 16 dimensions, labelled by cluster.</summary>
    private static (float[] X, int[] Labels) Clusters(int n, ulong seed)
    {
        var rng = new Rng(13);
        int d = TinyMlp.InputFeatures;
        var centres = new float[4 * d];
        for (int i = 0; i < centres.Length; i++) centres[i] = 2 * rng.NextFloat() - 1;
        rng = new Rng(seed);
        var x = new float[n * d];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextInt(4);
            for (int j = 0; j < d; j++) x[i * d + j] = centres[labels[i] * d + j] + 0.6f * (rng.NextFloat() - 0.5f);
        }
        return (x, labels);
    }

    private static (double[] Losses, float[] Weights, float[] Initial) MiniBertSteps(DistributedContext? context, int steps, int globalBatch, bool frozen, bool halves)
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
            float Step(int at, int n) => net.TrainStep(ids.AsSpan(at * T, n * T), labels.AsSpan(at, n), mask.AsSpan(at * T, n * T), n, T);
            float loss = halves ? InTwoParts(net.Parameters, first, globalBatch, Step) : Step(first, count);
            dp?.AverageGradients(count, globalBatch);
            opt.Step();
            losses[s] = dp?.GlobalMean(loss, count) ?? loss;
        }
        return (losses, net.Parameters.ReadValues.ToArray(), initial);
    }
}
