using System.Diagnostics;
using Compiled.Nets.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Compiled.Nets.Bench;

/// <summary>
/// `onnx`: the seed ConvNet exported with ExportOnnx and run by ONNX Runtime 1.32 (CPU provider, 2 intra-op threads,
/// all graph optimisations), against the compiled network with the same weights, batch 1 and 64, in alternating
/// rounds; outputs are compared first. The network is first trained for two epochs on the Fashion-MNIST subset the
/// sample ships (or loaded from the checkpoint given, e.g. the FashionMnist sample's model.safetensors), and requests
/// are that subset's test images in turn: a trained network's ReLU outputs are mostly zeros (which the compiled
/// batch-1 inference exploits), random weights' are not, so random weights also get a line.
/// </summary>
internal static class OnnxBench
{
    private const int Images = 64;

    public static int Run(string[] args)
    {
        string? model = args.Length > 1 ? args[1] : null;
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Compiled.Nets.sln"))) root = Path.GetDirectoryName(root)!;
        string data = Path.Combine(root, "samples/FashionMnist/data");
        var (train, trainCount, _, _) = DatasetReaders.ReadIdxImages(Path.Combine(data, "train-images-idx3-ubyte.gz"));
        var labels = DatasetReaders.ReadIdxLabels(Path.Combine(data, "train-labels-idx1-ubyte.gz"), 10);
        var (test, _, _, _) = DatasetReaders.ReadIdxImages(Path.Combine(data, "t10k-images-idx3-ubyte.gz"));
        Normalize(train); Normalize(test);

        using var net = new ConvNetCompiled(seed: 1);
        Console.WriteLine($"ConvNet 1×28×28, ONNX Runtime {OrtEnv.Instance().GetVersionString()} vs compiled; requests: {Images} test images in turn");
        Console.WriteLine("(median ms of 5 rounds; each side in its own block of requests, 100 ms apart, since ONNX Runtime's threads spin after a call)");
        using (var session = Session(net))
            Compare(net, session, test, "random weights", batch64: false);
        if (model != null) Training.Checkpoint.Load(model, net.Parameters);
        else
        {
            var opt = new Training.AdamW(net.Parameters);
            var logits = new float[64 * 10];
            for (int epoch = 0; epoch < 2; epoch++)
                for (int b = 0; b + 64 <= trainCount; b += 64)
                {
                    net.TrainStep(train.AsSpan(b * 784, 64 * 784), labels.AsSpan(b, 64), 64, logits);
                    opt.Step();
                }
        }
        using (var session = Session(net))
            Compare(net, session, test, model != null ? $"trained: {Path.GetFileName(model)}" : "trained 2 epochs on the 3k subset", batch64: true);
        return 0;
    }

    private static void Normalize(float[] pixels)
    {
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (pixels[i] - 0.2860f) / 0.3530f;
    }

    private static InferenceSession Session(ConvNetCompiled net)
    {
        string path = Path.Combine(Path.GetTempPath(), $"convnet-{Environment.ProcessId}.onnx");
        net.ExportOnnx(path);
        var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        var session = new InferenceSession(path, options);
        File.Delete(path);
        return session;
    }

    private static void Compare(ConvNetCompiled net, InferenceSession session, float[] test, string weights, bool batch64)
    {
        Console.WriteLine($"  {weights}:");
        foreach (int batch in batch64 ? new[] { 1, 64 } : new[] { 1 })
        {
            int requests = batch == 1 ? Images : 1;
            var xs = Enumerable.Range(0, requests).Select(i => test.AsSpan(i * batch * 784, batch * 784).ToArray()).ToArray();
            var inputs = xs.Select(x => new[] { NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x, [batch, 1, 28, 28])) }).ToArray();
            var ours = new float[batch * 10];
            int at = 0;
            void Theirs() { using var r = session.Run(inputs[at++ % requests]); }
            void Ours() => net.Forward(xs[at++ % requests], batch, ours);

            double maxDiff = 0;
            for (int i = 0; i < requests; i++)
            {
                net.Forward(xs[i], batch, ours);
                using var r = session.Run(inputs[i]);
                maxDiff = Math.Max(maxDiff, ours.Zip(r.First().AsEnumerable<float>(), (a, b) => Math.Abs(a - b)).Max());
            }
            int reps = batch == 1 ? 1000 : 20;
            double Time(Action a)
            {
                Thread.Sleep(100);
                for (int i = 0; i < reps / 10 + 1; i++) a();
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < reps; i++) a();
                return sw.Elapsed.TotalSeconds / reps;
            }
            var modes = batch == 1
                ? new (string Name, WeightPrecision? Store)[] { ("float32", null), ("float32, read-only store", WeightPrecision.Float32), ("bfloat16 Linear weights, read-only store", WeightPrecision.BFloat16) }
                : new (string Name, WeightPrecision? Store)[] { ("float32", null) };
            foreach (var (name, store) in modes)
            {
                if (store is { } p) net.Parameters.MakeReadOnly(p); else net.Parameters.MakeWritable();
                var rounds = new Rounds();
                for (int r = 0; r < 5; r++) rounds.Add(Time(Ours), Time(Theirs));
                Console.WriteLine($"    batch {batch,2}, {name,-42} ours / ONNX Runtime / speed-up {rounds.ToString(batch == 1 ? "F3" : "F2")}");
            }
            net.Parameters.MakeWritable();
            Console.WriteLine($"    (max |Δ| of the batch-{batch} outputs, float32: {maxDiff:E1})");
        }
    }
}
