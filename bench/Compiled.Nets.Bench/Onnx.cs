using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Compiled.Nets.Bench;

/// <summary>
/// `onnx`: the seed ConvNet exported with ExportOnnx and run by ONNX Runtime 1.32 (CPU provider, 2 intra-op threads,
/// all graph optimisations), against the compiled network with the same weights, batch 1 and 64, in alternating
/// rounds; outputs are compared first.
/// </summary>
internal static class OnnxBench
{
    public static int Run()
    {
        using var net = new ConvNetCompiled(seed: 1);
        string path = Path.Combine(Path.GetTempPath(), $"convnet-{Environment.ProcessId}.onnx");
        net.ExportOnnx(path);
        using var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(path, options);
        File.Delete(path);
        Console.WriteLine($"ConvNet 1×28×28, ONNX Runtime {OrtEnv.Instance().GetVersionString()} vs compiled (median ms of 5 alternating rounds)");
        foreach (int batch in new[] { 1, 64 })
        {
            var x = Summary.Random(batch * 784);
            var ours = new float[batch * 10];
            var input = new DenseTensor<float>(x, [batch, 1, 28, 28]);
            var inputs = new[] { NamedOnnxValue.CreateFromTensor("input", input) };
            float[] Theirs() { using var r = session.Run(inputs); return r.First().AsEnumerable<float>().ToArray(); }
            net.Forward(x, batch, ours);
            double maxDiff = ours.Zip(Theirs(), (a, b) => Math.Abs(a - b)).Max();
            int reps = batch == 1 ? 400 : 20;
            double Time(Action a) { a(); var sw = Stopwatch.StartNew(); for (int i = 0; i < reps; i++) a(); return sw.Elapsed.TotalMilliseconds / reps; }
            for (int w = 0; w < 3; w++) { Time(() => net.Forward(x, batch, ours)); Time(() => Theirs()); }
            var rounds = new Rounds();
            for (int r = 0; r < 5; r++) rounds.Add(Time(() => net.Forward(x, batch, ours)) / 1e3, Time(() => Theirs()) / 1e3);
            Console.WriteLine($"  batch {batch,2}: ours / ONNX Runtime / speed-up {rounds.ToString(batch == 1 ? "F3" : "F2")}   (max |Δ| of the outputs {maxDiff:E1})");
        }
        // Serving as the README shows it: read-only weights, bfloat16 Linear weights at batch 1 (ONNX Runtime: float32).
        net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
        var x1 = Summary.Random(784);
        var y1 = new float[10];
        var in1 = new[] { NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x1, [1, 1, 28, 28])) };
        double T(Action a) { a(); var sw = Stopwatch.StartNew(); for (int i = 0; i < 400; i++) a(); return sw.Elapsed.TotalMilliseconds / 400; }
        void Ort() { using var r = session.Run(in1); }
        for (int w = 0; w < 3; w++) { T(() => net.Forward(x1, 1, y1)); T(Ort); }
        var bf16 = new Rounds();
        for (int r = 0; r < 5; r++) bf16.Add(T(() => net.Forward(x1, 1, y1)) / 1e3, T(Ort) / 1e3);
        Console.WriteLine($"  batch  1, bfloat16 Linear weights (read-only store): {bf16.ToString("F3")}");
        return 0;
    }
}
