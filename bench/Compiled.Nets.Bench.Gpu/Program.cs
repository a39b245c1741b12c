using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Compiled.Nets;
using Compiled.Nets.Bench.Gpu;
using Compiled.Nets.Gpu;

// The seed ConvNet on a GPU through its generated device twin: training step (forward, loss, backward, AdamW) at
// batch 64 and inference at batch 1 and 64; one bert-base layer's training step and inference at batch 16 × 128 tokens;
// median milliseconds over timed repetitions after a warm-up; launches per step fused and as one kernel per op would be;
// on CUDA, the device memory a model's training took.
// Before timing, each twin is checked against its CPU network in this process (logits, then one training step's loss
// and every gradient), so a first run on a GPU also says whether the CUDA path computes the right thing; the exit code
// is 3 when a check fails, 4 when a model throws (the others still run). The step is then taken again from the same weights: no device kernel uses atomics, so its
// loss and gradients should repeat bit for bit (printed, not a failure: cuBLAS promises it only per GPU model). bench/gpu/run.sh runs PyTorch on the same GPU beside it.
const string usage = "Compiled.Nets.Bench.Gpu [--device auto|cuda|cpu-accelerator] [--reps N] [--json file] [--models a,b] [--no-check] [--tf32]";
string[] known = ["--device", "--reps", "--json", "--models"];
if (args.Contains("--help") || args.Contains("-h")) { Console.WriteLine(usage); return 0; }
for (int a = 0; a < args.Length; a++)
{
    if (args[a] is "--no-check" or "--tf32") continue;
    if (!known.Contains(args[a]) || a + 1 >= args.Length) { Console.Error.WriteLine($"unknown or incomplete option '{args[a]}'\n{usage}"); return 2; }
    a++;
}
string kind = Arg("--device", "auto");
if (!int.TryParse(Arg("--reps", "50"), CultureInfo.InvariantCulture, out int reps) || reps < 1) { Console.Error.WriteLine($"--reps takes a positive count\n{usage}"); return 2; }
string? json = Arg("--json", "") is { Length: > 0 } j ? j : null;
string[] allModels = ["convnet_1x28x28", "convnet_3x32x32", "bert_layer"];
var models = Arg("--models", string.Join(',', allModels)).Split(',');
if (models.Except(allModels).FirstOrDefault() is { } unknownModel) { Console.Error.WriteLine($"unknown model '{unknownModel}' (models: {string.Join(", ", allModels)})"); return 2; }
bool check = !args.Contains("--no-check");
// --tf32: cuBLAS may use TF32 tensor cores while timing (MatmulPrecision.High); the checks against the CPU run in float32
// first. The JSON says TF32 only where it applied (not on ILGPU's own GEMM), so ratios.py refuses an unequal comparison.
var timedPrecision = args.Contains("--tf32") ? MatmulPrecision.High : MatmulPrecision.Highest;
bool failed = false;

using var device = GpuDevice.Open(kind);
Console.WriteLine($"Device: {device}; GEMM: {device.GemmBackend}");
var results = new List<Dictionary<string, object>>();
var crashed = new List<string>();
if (models.Contains("convnet_1x28x28")) Guarded("convnet_1x28x28", () => Run("convnet_1x28x28", new ConvNet28(1), new ConvNet28(1), n => n.ToDevice(device)));
if (models.Contains("convnet_3x32x32")) Guarded("convnet_3x32x32", () => Run("convnet_3x32x32", new ConvNet32(1), new ConvNet32(1), n => n.ToDevice(device)));
if (models.Contains("bert_layer")) Guarded("bert_layer", RunBert);
if (json is not null) File.WriteAllText(json, JsonSerializer.Serialize(new { device = device.ToString(), gemm = device.GemmBackend, tf32 = device.MatmulPrecision == MatmulPrecision.High && device.GemmBackend.Contains("TF32", StringComparison.Ordinal), results }, new JsonSerializerOptions { WriteIndented = true }));
if (failed) Console.WriteLine("CHECK FAILED: a device twin disagrees with its CPU network (see above); its times are not comparable.");
if (crashed.Count > 0) Console.WriteLine($"FAILED to run: {string.Join(", ", crashed)} (exceptions above)");
return crashed.Count > 0 ? 4 : failed ? 3 : 0;

// A model that throws is reported and the others still run (and are written): a first run on a GPU says as much as it can.
void Guarded(string name, Action run)
{
    try { run(); }
    catch (Exception e)
    {
        Console.WriteLine($"{name}: FAILED with {e}");
        crashed.Add(name);
    }
}

void Run<TNet>(string name, TNet net, TNet cpu, Func<TNet, DeviceNetwork> toDevice) where TNet : IClassifier, IDisposable
{
    using var _ = net;
    using var __ = cpu;
    long? memoryBefore = DeviceMemoryInUse();
    using var twin = toDevice(net);
    using var opt = new DeviceAdamW(twin, 1e-3f);
    var rng = new Random(1);
    float[] Inputs(int batch) => Enumerable.Range(0, batch * net.InputSize).Select(_ => (float)rng.NextDouble()).ToArray();
    int[] Labels(int batch) => Enumerable.Range(0, batch).Select(_ => rng.Next(net.OutputSize)).ToArray();
    var x64 = Inputs(64); var y64 = Labels(64); var x1 = Inputs(1);
    var out64 = new float[64 * net.OutputSize]; var out1 = new float[net.OutputSize];
    device.MatmulPrecision = MatmulPrecision.Highest; // the checks compare float32 with the CPU
    var agreement = check ? Agreement(name, twin, cpu.Parameters, net.Parameters, o => cpu.Forward(x64, 64, o), o => twin.Forward(x64, 64, o),
        o => cpu.TrainStep(x64, y64, 64, o), o => twin.TrainStep(x64, y64, 64, o), out64.Length) : null;

    device.MatmulPrecision = timedPrecision;
    double step = Median(reps, () => { twin.TrainStep(x64, y64, 64); opt.Step(); device.Synchronize(); });
    double? memory = Megabytes(memoryBefore, DeviceMemoryInUse());
    double infer64 = Median(reps, () => twin.Forward(x64, 64, out64));
    double infer1 = Median(reps, () => twin.Forward(x1, 1, out1));
    Console.WriteLine($"{name}: train step b64 {step:F3} ms | inference b64 {infer64:F3} ms, b1 {infer1:F3} ms | launches per step {twin.LaunchesPerTrainStep} fused, {twin.LaunchesPerTrainStepUnfused} one kernel per op{(memory is { } m ? $" | device memory for training {m:F0} MB" : "")}");
    results.Add(new()
    {
        ["model"] = name, ["train_step_b64_ms"] = step, ["infer_b64_ms"] = infer64, ["infer_b1_ms"] = infer1,
        ["launches_fused"] = twin.LaunchesPerTrainStep, ["launches_unfused"] = twin.LaunchesPerTrainStepUnfused,
        ["check"] = agreement ?? "not run",
    });
    if (memory is { } mb) results[^1]["train_memory_mb"] = mb;
}

// Batch 16 of 128 token ids, every position real (the mask still goes up and is applied, as in fine-tuning).
void RunBert()
{
    const int batch = 16, seq = 128;
    using var net = new BertLayer(1);
    using var cpu = new BertLayer(1);
    long? memoryBefore = DeviceMemoryInUse();
    using var twin = net.ToDevice(device);
    using var opt = new DeviceAdamW(twin, 2e-5f);
    var rng = new Random(1);
    var ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(1000)).ToArray();
    var mask = Enumerable.Repeat(1, batch * seq).ToArray();
    var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(2)).ToArray();
    var output = new float[batch * 2];
    // The check pads the batch (sample b has b·4 fewer real tokens), so the mask's path is compared too.
    var padded = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - i / seq * 4 ? 1 : 0).ToArray();
    device.MatmulPrecision = MatmulPrecision.Highest;
    var agreement = check ? Agreement("bert_layer", twin, cpu.Parameters, net.Parameters, o => cpu.Forward(ids, padded, batch, seq, o), o => twin.Forward(ids, padded, batch, seq, o),
        o => cpu.TrainStep(ids, labels, padded, batch, seq, o), o => twin.TrainStep(ids, labels, padded, batch, seq, o), output.Length) : null;
    device.MatmulPrecision = timedPrecision;
    double step = Median(reps, () => { twin.TrainStep(ids, labels, mask, batch, seq); opt.Step(); device.Synchronize(); });
    double? memory = Megabytes(memoryBefore, DeviceMemoryInUse());
    double infer = Median(reps, () => twin.Forward(ids, mask, batch, seq, output));
    Console.WriteLine($"bert_layer: train step b16x128 {step:F3} ms | inference b16x128 {infer:F3} ms | launches per step {twin.LaunchesPerTrainStep} fused, {twin.LaunchesPerTrainStepUnfused} one kernel per op{(memory is { } m ? $" | device memory for training {m:F0} MB" : "")}");
    results.Add(new()
    {
        ["model"] = "bert_layer", ["train_step_b16x128_ms"] = step, ["infer_b16x128_ms"] = infer,
        ["launches_fused"] = twin.LaunchesPerTrainStep, ["launches_unfused"] = twin.LaunchesPerTrainStepUnfused,
        ["check"] = agreement ?? "not run",
    });
    if (memory is { } mb) results[^1]["train_memory_mb"] = mb;
}

// The twin against its CPU network from the same weights: logits, then one training step's loss, logits and every
// gradient, each as its largest difference over its largest magnitude. A twin that disagrees by more than 1e-3 fails.
string Agreement(string name, DeviceNetwork twin, ParameterStore cpuStore, ParameterStore hostStore, Action<float[]> cpuForward, Action<float[]> devForward,
    Func<float[], float> cpuStep, Func<float[], float> devStep, int outputs)
{
    static double Relative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++) { diff = Math.Max(diff, Math.Abs(expected[i] - actual[i])); scale = Math.Max(scale, Math.Abs(expected[i])); }
        return double.IsNaN(diff) ? double.PositiveInfinity : diff / Math.Max(scale, 1e-30);
    }
    var a = new float[outputs]; var b = new float[outputs];
    cpuForward(a); devForward(b);
    double logits = Relative(a, b);
    float cpuLoss = cpuStep(a), devLoss = devStep(b);
    double loss = Math.Abs(cpuLoss - devLoss) / Math.Max(Math.Abs(cpuLoss), 1e-30), stepLogits = Relative(a, b);
    twin.CopyGradientsToHost();
    double gradients = 0; string worst = "";
    foreach (var p in cpuStore.Parameters)
    {
        if (p.IsBuffer) continue;
        double r = Relative(cpuStore.Gradient(p), hostStore.Gradient(hostStore[p.Name]));
        if (r > gradients || double.IsInfinity(r)) { gradients = r; worst = p.Name; }
    }
    bool ok = Math.Max(Math.Max(logits, loss), Math.Max(stepLogits, gradients)) <= 1e-3;
    failed |= !ok;
    // The same step again: the same bits?
    var first = hostStore.Parameters.Where(p => !p.IsBuffer).Select(p => hostStore.Gradient(p).ToArray()).ToList();
    float again = devStep(b);
    twin.CopyGradientsToHost();
    bool repeats = BitConverter.SingleToInt32Bits(again) == BitConverter.SingleToInt32Bits(devLoss)
        && hostStore.Parameters.Where(p => !p.IsBuffer).Select((p, i) => hostStore.Gradient(p).SequenceEqual(first[i])).All(same => same);
    string line = $"logits {logits:E1}, loss {loss:E1}, step logits {stepLogits:E1}, gradients {gradients:E1} ({worst}): {(ok ? "OK" : "FAILED")}; " +
        $"the step again: {(repeats ? "bit for bit" : "DIFFERENT bits")}";
    Console.WriteLine($"{name} against the CPU: {line}");
    return line;
}

// Device memory in use (the driver's total less its free memory, as nvidia-smi counts a process's), on CUDA only: its growth
// from before a twin is made to after its timed training steps is what the model, its gradients, the optimizer's state,
// the workspace and the libraries' own allocations took; PyTorch's side measures the same way.
long? DeviceMemoryInUse()
{
    if (device.Accelerator is not ILGPU.Runtime.Cuda.CudaAccelerator cuda) return null;
    device.Synchronize();
    return cuda.MemorySize - cuda.GetFreeMemory();
}

static double? Megabytes(long? before, long? after) => before is { } b && after is { } a ? (a - b) / (1024.0 * 1024.0) : null;

static double Median(int reps, Action body)
{
    for (int i = 0; i < Math.Max(3, reps / 10); i++) body();   // warm-up: kernels compile on first use
    var t = new double[reps];
    for (int i = 0; i < reps; i++)
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        t[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
    Array.Sort(t);
    return t[reps / 2];
}

string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
