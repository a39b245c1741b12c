using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// Networks drawn at random from the ops the generator compiles (convolutions of every stride, padding, dilation, group
/// and bias, transposed convolutions, pools, norms, activations, residual adds, concatenations, broadcast gates and
/// means, upsampling, scalar arithmetic, splits, a layer applied twice):
/// each must build without a diagnostic, and its generated training step must agree with its own Forward run eagerly
/// on the tape — logits, loss and every gradient — at batch 1 and 3. The planner's fusions (a convolution's bias and
/// activations in one loop, a ReLU moved after a max-pool, chained biases) meet here in combinations no fixed test
/// lists. The tests below take them (and random sequence networks) to ONNX Runtime, to the device twins and, broken
/// once, to the diagnostics. Seeded: the same networks every run, and a failure prints its class.
/// </summary>
public class RandomNetworkTests
{
    private const int Classes = 3;

    /// <summary>The image and feature networks and their compiled assembly, built once for the tests that take them.
    /// <c>COMPILED_NETS_FUZZ_SEED</c> and <c>COMPILED_NETS_FUZZ_COUNT</c> draw other networks, and more, for exploring.</summary>
    private static readonly Lazy<(List<RandomNet> Nets, Assembly Assembly)> s_built = new(() =>
    {
        var random = new Random(FuzzSeed(5));
        return Assemble(Enumerable.Range(0, FuzzCount(28)).Select(i => i % 4 == 3 ? FeatureNet(random, i) : ImageNet(random, i)).ToList());
    });

    /// <summary>The seed the random networks are drawn with: <c>COMPILED_NETS_FUZZ_SEED</c> added to CI's.</summary>
    private static int FuzzSeed(int ci) => int.TryParse(Environment.GetEnvironmentVariable("COMPILED_NETS_FUZZ_SEED"), out int s) ? ci + s : ci;

    /// <summary>How many networks are drawn: <c>COMPILED_NETS_FUZZ_COUNT</c>, else CI's count.</summary>
    private static int FuzzCount(int ci) => int.TryParse(Environment.GetEnvironmentVariable("COMPILED_NETS_FUZZ_COUNT"), out int c) && c > 0 ? c : ci;

    [Fact]
    public void RandomNetworks_TrainStepMatchesTheirEagerForward()
    {
        var (nets, assembly) = s_built.Value;
        var failures = new List<string>();
        foreach (var n in nets)
        {
            foreach (int batch in new[] { 1, 3 })
            {
                string? why;
                try { why = Compare(assembly.GetType("Fuzz." + n.Name)!, n.InputShape, batch); }
                catch (Exception e) { why = e.ToString(); }
                if (why is not null) failures.Add($"{n.Name} at batch {batch}: {why}\n{n.Source}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>The random sequence networks and their compiled assembly, built once for both of their tests.</summary>
    private static readonly Lazy<(List<RandomNet> Nets, Assembly Assembly)> s_sequences = new(() =>
    {
        var random = new Random(FuzzSeed(4242));
        return Assemble(Enumerable.Range(0, FuzzCount(16)).Select(i => SequenceNet(random, i)).ToList());
    });

    /// <summary>The random sequence networks exported to ONNX (ids and attention_mask in, a symbolic batch and length)
    /// run in ONNX Runtime to 1e-4 of the compiled inference on right-padded batches.</summary>
    [Fact]
    public void RandomSequenceNetworks_ExportedToOnnx_RunInOnnxRuntimeAsCompiled()
    {
        var (nets, assembly) = s_sequences.Value;
        var failures = new List<string>();
        foreach (var n in nets)
        {
            var type = assembly.GetType("Fuzz." + n.Name)!;
            var instance = Activator.CreateInstance(type, 11UL)!;
            using var owner = (IDisposable)instance;
            var net = (ISequenceClassifier)instance;
            try
            {
                using var session = Exported(instance);
                foreach (var (batch, length) in new[] { (1, 1), (3, MaxSequence) })
                {
                    var (ids, mask) = Padded(batch, length, new Random(batch + length));
                    var expected = new float[batch * Classes];
                    net.Forward(ids, mask, batch, length, expected);
                    static Microsoft.ML.OnnxRuntime.NamedOnnxValue Longs(string name, int[] v, int b, int t) =>
                        Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(name, new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(v.Select(x => (long)x).ToArray(), [b, t]));
                    // A network whose outputs the mask cannot change (only per-position ops before the first token) exports no mask input.
                    var inputs = new List<Microsoft.ML.OnnxRuntime.NamedOnnxValue> { Longs("input", ids, batch, length) };
                    if (session.InputMetadata.ContainsKey("attention_mask")) inputs.Add(Longs("attention_mask", mask, batch, length));
                    using var results = session.Run(inputs);
                    var actual = results.Single(r => r.Name == "output").AsEnumerable<float>().ToArray();
                    if (Differs(expected, actual, 1e-4) is { } d) failures.Add($"{n.Name} at batch {batch}, length {length}: ONNX Runtime{d}\n{n.Source}");
                }
            }
            catch (Exception e) { failures.Add($"{n.Name}: {e}\n{n.Source}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>The network exported to an ONNX file, loaded into ONNX Runtime (the file deleted once it is loaded).</summary>
    private static Microsoft.ML.OnnxRuntime.InferenceSession Exported(object network)
    {
        string path = Path.Combine(Path.GetTempPath(), $"cnet-random-{network.GetType().Name}-{Guid.NewGuid():N}.onnx");
        try
        {
            network.GetType().GetMethod("ExportOnnx", [typeof(string)])!.Invoke(network, [path]);
            return new Microsoft.ML.OnnxRuntime.InferenceSession(path);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Random ids, right-padded as a tokenizer pads: sample b has length − b real tokens (at least one).</summary>
    private static (int[] Ids, int[] Mask) Padded(int batch, int length, Random random)
    {
        var ids = Enumerable.Range(0, batch * length).Select(_ => random.Next(Vocabulary)).ToArray();
        var mask = new int[batch * length];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < Math.Max(1, length - b); t++) mask[b * length + t] = 1;
        return (ids, mask);
    }

    /// <summary>
    /// Random sequence networks: compiled training step against the eager tape with the mask, at batch 1 and 3 and at
    /// lengths 1, 4 and MaxSequence, right-padded as a tokenizer pads (each sample of a batch one token shorter).
    /// </summary>
    [Fact]
    public void RandomSequenceNetworks_TrainStepMatchesTheirEagerForward()
    {
        var (nets, assembly) = s_sequences.Value;
        var failures = new List<string>();
        foreach (var n in nets)
            foreach (var (batch, length) in new[] { (1, 1), (3, 4), (3, MaxSequence) })
            {
                string? why;
                try { why = CompareSequence(assembly.GetType("Fuzz." + n.Name)!, batch, length); }
                catch (Exception e) { why = e.ToString(); }
                if (why is not null) failures.Add($"{n.Name} at batch {batch}, length {length}: {why}\n{n.Source}");
            }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    private static string? CompareSequence(Type type, int batch, int length)
    {
        var instance = Activator.CreateInstance(type, 3UL)!;
        using var owner = (IDisposable)instance;
        var net = (ISequenceClassifier)instance;
        var (ids, mask) = Padded(batch, length, new Random(batch * 7 + length));
        var labels = Enumerable.Range(0, batch).Select(b => (b + length) % Classes).ToArray();

        net.Parameters.ZeroGradients();
        float[] eagerLogits;
        float eagerLoss;
        using (Eager.Training())
        {
            var logits = ((ILayer)instance).Forward(Tensor.FromIds(ids, batch, length).WithMask(mask));
            eagerLogits = logits.Data.ToArray();
            var loss = logits.CrossEntropy(labels);
            eagerLoss = loss.Data[0];
            loss.Backward();
        }
        var store = net.Parameters;
        var eagerGrads = store.Parameters.Select(p => store.Gradient(p).ToArray()).ToArray();
        double scale = eagerGrads.SelectMany(g => g).Select(v => Math.Abs((double)v)).DefaultIfEmpty(0).Max();
        double floor = 0.1 * scale; // as for the image networks: a tensor's own scale, not below a tenth of the network's

        var logitsOut = new float[batch * Classes];
        float compiledLoss = net.TrainStep(ids, labels, mask, batch, length, logitsOut);
        if (Math.Abs(compiledLoss - eagerLoss) > 1e-4 * (1 + Math.Abs(eagerLoss))) return $"loss {compiledLoss} vs eager {eagerLoss}";
        if (Differs(eagerLogits, logitsOut, 1e-4) is { } l) return "logits" + l;
        for (int i = 0; i < eagerGrads.Length; i++)
            if (Differs(eagerGrads[i], store.Gradient(store.Parameters[i]).ToArray(), 1e-3, floor) is { } g) return store.Parameters[i].Name + g;
        // Inference gives the training step's logits (nothing random in these networks).
        var inference = new float[batch * Classes];
        net.Forward(ids, mask, batch, length, inference);
        if (Differs(logitsOut, inference, 1e-5) is { } f) return "Forward" + f;
        return scale > 0 ? null : "every gradient is zero (the comparison would be vacuous)";
    }

    /// <summary>
    /// Each network exported to ONNX after two training steps (so BatchNorm's running statistics are not trivial) runs in
    /// ONNX Runtime to 1e-4 of the compiled inference, at batch 1 and 3 (the batch dimension is symbolic).
    /// </summary>
    [Fact]
    public void RandomNetworks_ExportedToOnnx_RunInOnnxRuntimeAsCompiled()
    {
        var (nets, assembly) = s_built.Value;
        var failures = new List<string>();
        foreach (var n in nets)
        {
            var type = assembly.GetType("Fuzz." + n.Name)!;
            var instance = Activator.CreateInstance(type, 7UL)!;
            using var owner = (IDisposable)instance;
            var net = (IClassifier)instance;
            int inSize = n.InputShape.Aggregate(1, (a, b) => a * b);
            var random = new Random(n.Name.Length);
            var trainX = Enumerable.Range(0, 4 * inSize).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            for (int step = 0; step < 2; step++) net.TrainStep(trainX, [0, 1, 2, 1], 4);
            try
            {
                using var session = Exported(instance);
                foreach (int batch in new[] { 1, 3 })
                {
                    var x = Enumerable.Range(0, batch * inSize).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
                    var expected = new float[batch * Classes];
                    net.Forward(x, batch, expected);
                    var input = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(x, [batch, .. n.InputShape]);
                    using var results = session.Run([Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("input", input)]);
                    var actual = results.Single(r => r.Name == "output").AsEnumerable<float>().ToArray();
                    if (Differs(expected, actual, 1e-4) is { } d) failures.Add($"{n.Name} at batch {batch}: ONNX Runtime{d}\n{n.Source}");
                }
            }
            catch (Exception e) { failures.Add($"{n.Name}: {e}\n{n.Source}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>
    /// The random networks, each broken once as a user breaks one while typing — a Linear's or a convolution's input
    /// size off by one, a layer declaration deleted, an activation given an argument it does not take: the generator
    /// never fails, its generated files hold no compiler error, and a size off by one is exactly one CNET0001 at that
    /// size (the rest of the class still compiles against the members it keeps), whose code fix, where one is offered,
    /// gives a network that builds without an error.
    /// </summary>
    [Fact]
    public void RandomNetworks_BrokenOnce_GiveOneErrorAndNoBrokenGeneratedCode()
    {
        var (nets, _) = s_built.Value;
        var random = new Random(31);
        var failures = new List<string>();
        int fixes = 0;
        foreach (var n in nets.Take(14))
        {
            foreach (var (what, broken, single) in Mutations(n.Source, random))
            {
                string file = "using Compiled.Nets;\nnamespace Fuzz;\n" + broken;
                var compilation = GeneratorHarness.Compile(file);
                GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
                var cnet = GeneratorHarness.Analyze(output).Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
                var inGenerated = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error
                    && d.Location.SourceTree?.FilePath.Contains("Compiled.Nets.Generator", StringComparison.Ordinal) == true).ToList();
                string? why = generatorDiagnostics.Length > 0 ? "the generator failed: " + generatorDiagnostics[0]
                    : inGenerated.Count > 0 ? "generated code does not compile: " + inGenerated[0]
                    : single is { } id && (cnet.Count != 1 || cnet[0].Id != id) ? $"expected one {id}, got: {string.Join("; ", cnet)}"
                    : single is null && cnet.Count == 0 && !output.GetDiagnostics().Any(d => d.Severity == DiagnosticSeverity.Error) ? "no error at all" : null;
                // A code fix travels as the diagnostic's replacement text; offered, it must give a network that builds clean.
                if (why is null && cnet.Count == 1 && cnet[0].Properties.TryGetValue("Replacement", out var replacement) && replacement is not null)
                {
                    fixes++;
                    var span = cnet[0].Location.SourceSpan;
                    var (after, _, fixedOutput) = GeneratorHarness.Run(file[..span.Start] + replacement + file[span.End..]);
                    if (after.Length > 0 || fixedOutput.Any(d => d.Severity == DiagnosticSeverity.Error))
                        why = $"the fix \"Change to {replacement}\" does not build: {string.Join("; ", after.Concat(fixedOutput.Where(d => d.Severity == DiagnosticSeverity.Error)).Take(3))}";
                }
                if (why is not null) failures.Add($"{n.Name}, {what}: {why}\n{broken}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
        Assert.True(fixes > 0, "no mismatch was offered a fix: the fixes went untested");
    }

    /// <summary>One-edit breakages of a network's source: (what, the broken source, the one diagnostic it must give or null).</summary>
    private static IEnumerable<(string What, string Source, string? Single)> Mutations(string source, Random random)
    {
        // Not a grouped convolution's: its groups must divide the size too, a second rule the edit breaks.
        var sizes = System.Text.RegularExpressions.Regex.Matches(source, @"\[(Linear|Conv2d)\((\d+), (?![^\n]*Groups)");
        if (sizes.Count > 0)
        {
            var m = sizes[random.Next(sizes.Count)];
            var g = m.Groups[2];
            yield return ($"{m.Groups[1].Value}({g.Value}) given {int.Parse(g.Value, CultureInfo.InvariantCulture) + 1} inputs",
                source[..g.Index] + (int.Parse(g.Value, CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture) + source[(g.Index + g.Length)..], "CNET0001");
        }
        var declarations = source.Split('\n').Where(l => l.TrimStart().StartsWith('[') && l.Contains("public partial", StringComparison.Ordinal)).ToList();
        if (declarations.Count > 0)
            yield return ("a layer declaration deleted", source.Replace(declarations[random.Next(declarations.Count)] + "\n", "", StringComparison.Ordinal), null);
        int relu = source.IndexOf(".Relu()", StringComparison.Ordinal);
        if (relu >= 0) yield return ("Relu(3)", source[..relu] + ".Relu(3)" + source[(relu + ".Relu()".Length)..], "CNET0005");
    }

    /// <summary>See <see cref="RandomDeviceNetworkTests"/>. For exploring beyond CI: <c>COMPILED_NETS_FUZZ_SEED</c> draws
    /// other networks, <c>COMPILED_NETS_FUZZ_COUNT</c> more of them (a quarter of them sequence networks), and
    /// <c>COMPILED_NETS_FUZZ_CUDA_SHAPED=1</c> launches them as on CUDA (the simulated NVIDIA GPU: tiled GEMMs, warps of 32).</summary>
    internal static void DeviceTwinsMatchTheCpu()
    {
        var random = new Random(FuzzSeed(77));
        int count = FuzzCount(16);
        int images = count - count / 4;
        var (nets, assembly) = Assemble(Enumerable.Range(0, images).Select(i => i % 4 == 3 ? FeatureNet(random, i) : ImageNet(random, i))
            .Concat(Enumerable.Range(0, count / 4).Select(i => SequenceNet(random, i))).ToList(), gpu: true);
        using var device = Environment.GetEnvironmentVariable("COMPILED_NETS_FUZZ_CUDA_SHAPED") == "1"
            ? Compiled.Nets.Gpu.GpuDevice.OpenCudaShapedSimulation() : Compiled.Nets.Gpu.GpuDevice.Open("cpu-accelerator");
        var failures = new List<string>();
        foreach (var n in nets)
        {
            try
            {
                var type = assembly.GetType("Fuzz." + n.Name)!;
                var cpuInstance = Activator.CreateInstance(type, 9UL)!;
                var hostInstance = Activator.CreateInstance(type, 9UL)!;
                using var cpuOwner = (IDisposable)cpuInstance;
                using var hostOwner = (IDisposable)hostInstance;
                var cpu = (INetwork)cpuInstance; var host = (INetwork)hostInstance;
                using var dev = (Compiled.Nets.Gpu.DeviceNetwork)type.GetMethod("ToDevice", [typeof(Compiled.Nets.Gpu.GpuDevice)])!.Invoke(hostInstance, [device])!;
                const int batch = 3;
                int[] labels = [0, 2, 1];
                var a = new float[batch * Classes]; var b = new float[batch * Classes];
                Action inference;
                float la, lb;
                if (cpuInstance is ISequenceClassifier sequence)
                {
                    var (ids, mask) = Padded(batch, MaxSequence - 1, new Random(n.Name.Length));
                    la = sequence.TrainStep(ids, labels, mask, batch, MaxSequence - 1, a);
                    lb = dev.TrainStep(ids, labels, mask, batch, MaxSequence - 1, b);
                    inference = () => { sequence.Forward(ids, mask, batch, MaxSequence - 1, a); dev.Forward(ids, mask, batch, MaxSequence - 1, b); };
                }
                else
                {
                    var classifier = (IClassifier)cpuInstance;
                    var r = new Random(n.Name.Length);
                    var x = Enumerable.Range(0, batch * classifier.InputSize).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
                    la = classifier.TrainStep(x, labels, batch, a);
                    lb = dev.TrainStep(x, labels, batch, b);
                    inference = () => { classifier.Forward(x, batch, a); dev.Forward(x, batch, b); };
                }
                string? why = Math.Abs(la - lb) > 1e-4 * (1 + Math.Abs(la)) ? $"loss {lb} vs CPU {la}" : Differs(a, b, 1e-4) is { } d ? "logits" + d : null;
                dev.CopyGradientsToHost();
                // Relative to the network's largest gradient: behind a BatchNorm of a small batch a bias gradient is a small
                // difference of larger terms divided by a small deviation, whose float noise two summation orders need not
                // share (eager and the CPU differ there by a few 1e-5 too); a wrong kernel is off by far more.
                var cpuGrads = cpu.Parameters.Parameters.Select(p => cpu.Parameters.Gradient(p).ToArray()).ToList();
                double gradScale = cpuGrads.SelectMany(g => g).Select(v => Math.Abs((double)v)).DefaultIfEmpty(0).Max();
                for (int i = 0; why is null && i < cpuGrads.Count; i++)
                {
                    var p = cpu.Parameters.Parameters[i];
                    if (Differs(cpuGrads[i], host.Parameters.Gradient(host.Parameters[p.Name]).ToArray(), 5e-4, gradScale) is { } g) why = p.Name + g;
                }
                inference();
                why ??= Differs(a, b, 1e-4) is { } f ? "Forward" + f : null;
                if (why is not null) failures.Add($"{n.Name}: {why}\n{n.Source}");
            }
            catch (Exception e) { failures.Add($"{n.Name}: {e}\n{n.Source}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>The networks in one namespace: they build without a diagnostic, and their compiled assembly.</summary>
    private static (List<RandomNet> Nets, Assembly Assembly) Assemble(List<RandomNet> nets, bool gpu = false)
    {
        string source = "using Compiled.Nets;\nnamespace Fuzz;\n" + string.Join("\n", nets.Select(n => n.Source));
        var (diagnostics, _, _) = GeneratorHarness.Run(gpu, source);
        Assert.True(diagnostics.IsEmpty, string.Join("\n", diagnostics));
        return (nets, Build(source, gpu));
    }

    /// <summary>The sources through the generator, compiled and loaded (the runtime resolves to the test's own copy).</summary>
    private static Assembly Build(string source, bool gpu)
    {
        var compilation = GeneratorHarness.Compile(gpu, source).WithOptions(new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
            nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true, optimizationLevel: OptimizationLevel.Release));
        GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        using var image = new MemoryStream();
        var emitted = output.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(10)));
        image.Position = 0;
        return new AssemblyLoadContext("random-networks", isCollectible: true).LoadFromStream(image);
    }

    /// <summary>Null when the compiled step agrees with the eager tape, else what differs.</summary>
    private static string? Compare(Type type, int[] sampleShape, int batch)
    {
        var instance = Activator.CreateInstance(type, 5UL)!;
        using var owner = (IDisposable)instance;
        var net = (IClassifier)instance;
        var eagerForward = type.GetMethod("ForwardEager", [typeof(Tensor)])!;
        int inSize = sampleShape.Aggregate(1, (a, b) => a * b);
        var random = new Random(batch * 31 + type.Name.Length);
        var x = Enumerable.Range(0, batch * inSize).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var labels = Enumerable.Range(0, batch).Select(_ => random.Next(Classes)).ToArray();

        net.Parameters.ZeroGradients();
        float[] eagerLogits;
        float eagerLoss;
        using (Eager.Training())
        {
            var logits = (Tensor)eagerForward.Invoke(net, [new Tensor((float[])x.Clone(), [batch, .. sampleShape])])!;
            eagerLogits = logits.Data.ToArray();
            var loss = logits.CrossEntropy(labels, 0f);
            eagerLoss = loss.Data[0];
            loss.Backward();
        }
        var store = net.Parameters;
        var eagerGrads = store.Parameters.Select(p => store.Gradient(p).ToArray()).ToArray();
        // A tensor's own scale, but not below a tenth of the network's: the bias before a BatchNorm has a gradient that is
        // zero but for float noise (the normalisation's input gradient sums to zero per channel).
        double floor = 0.1 * eagerGrads.SelectMany(g => g).Select(v => Math.Abs((double)v)).DefaultIfEmpty(0).Max();

        var logitsOut = new float[batch * Classes];
        float compiledLoss = net.TrainStep(x, labels, batch, logitsOut);
        if (Math.Abs(compiledLoss - eagerLoss) > 1e-4 * (1 + Math.Abs(eagerLoss))) return $"loss {compiledLoss} vs eager {eagerLoss}";
        if (Differs(eagerLogits, logitsOut, 1e-4) is { } l) return "logits" + l;
        for (int i = 0; i < eagerGrads.Length; i++)
            if (Differs(eagerGrads[i], store.Gradient(store.Parameters[i]).ToArray(), 1e-3, floor) is { } g) return store.Parameters[i].Name + g;
        return eagerGrads.Any(g => g.Any(v => v != 0)) ? null : "every gradient is zero (the comparison would be vacuous)";
    }

    /// <summary>Null when every value is within <paramref name="rel"/> of the scale (the largest expected magnitude, or
    /// <paramref name="scaleOver"/>), else the first that is not.</summary>
    private static string? Differs(float[] expected, float[] actual, double rel, double scaleOver = 0)
    {
        if (expected.Length != actual.Length) return $": {actual.Length} values, expected {expected.Length}";
        double scale = Math.Max(scaleOver, expected.Select(v => Math.Abs((double)v)).DefaultIfEmpty(0).Max()) + 1e-6;
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= rel * scale + 1e-6)) return $"[{i}]: {actual[i]}, expected {expected[i]} (scale {scale:G3})";
        return null;
    }

    private sealed record RandomNet(string Name, string Source, int[] InputShape);

    /// <summary>A network's layer properties as they are drawn: L0, L1, … with their attributes.</summary>
    private sealed class Layers
    {
        private readonly StringBuilder _text = new();
        private int _count;

        /// <summary>Declares <c>[attribute] public partial type Lk { get; }</c> and returns its name.</summary>
        public string Add(string attribute, string type)
        {
            string name = "L" + _count++;
            _text.AppendLine($"    [{attribute}] public partial {type} {name} {{ get; }}");
            return name;
        }

        public override string ToString() => _text.ToString();
    }

    private static string F(double v) => v.ToString("0.0##", CultureInfo.InvariantCulture) + "f";

    private static readonly string[] s_activations = ["Relu()", "Gelu()", "Tanh()", "Sigmoid()", "Silu()", "LeakyRelu(0.1f)", "Elu()", "Hardswish()"];

    /// <summary>An image network: a random walk over [C, H, W] ops, then Flatten and two Linear layers.</summary>
    private static RandomNet ImageNet(Random r, int index)
    {
        string name = "Image" + index;
        int c = r.Next(1, 4), h = r.Next(5, 10), w = r.Next(5, 10);
        int[] input = [c, h, w];
        var layers = new Layers();
        var body = new StringBuilder();
        int value = 0;
        string x = "x";
        string Next() => "h" + value++;
        string Layer(string attribute, string type) => layers.Add(attribute, type);
        string Conv(int cin, int cout, int k, int s, int p, bool bias, int groups = 1) =>
            Layer($"Conv2d({cin}, {cout}, kernel: {k}, stride: {s}, padding: {p}, bias: {(bias ? "true" : "false")}{(groups > 1 ? $", Groups = {groups}" : "")})", "Conv2d");

        int steps = r.Next(2, 7);
        for (int step = 0; step < steps; step++)
        {
            string y = Next();
            switch (r.Next(14))
            {
                case 0 or 1:
                {
                    int k = r.Next(1, 4), s = r.Next(1, 3), p = r.Next(0, k / 2 + 1), cout = r.Next(2, 7);
                    if ((h + 2 * p - k) / s + 1 < 2 || (w + 2 * p - k) / s + 1 < 2) { s = 1; p = k / 2; }
                    int groups = c > 1 && cout % c == 0 && r.Next(3) == 0 ? c : 1;
                    string conv = Conv(c, cout, k, s, p, r.Next(3) > 0, groups);
                    string act = r.Next(3) > 0 ? "." + s_activations[r.Next(s_activations.Length)] : "";
                    (c, h, w) = (cout, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
                    if (act.Length == 0 && groups == 1 && h >= 2 && w >= 2 && r.Next(2) == 0)
                    {
                        // A 2×2 max-pool alone reading the convolution: the plan's convolution + pool (on the device, the
                        // pool reads the convolution's GEMM output).
                        act = ".MaxPool2d(2)" + (r.Next(2) == 0 ? ".Relu()" : "");
                        (h, w) = (h / 2, w / 2);
                    }
                    body.AppendLine($"        var {y} = {x}.Apply({conv}){act};");
                    break;
                }
                case 2 when h >= 3 && w >= 3:
                {
                    int s = r.Next(1, 3), p = r.Next(0, 2);
                    string op = r.Next(2) == 0 ? "MaxPool2d" : "AvgPool2d";
                    bool asLayer = r.Next(2) == 0;
                    string call = asLayer ? $"Apply({Layer($"{op}(2, {s}, {p})", op)})" : $"{op}(2, {s}, {p})";
                    string relu = r.Next(2) == 0 ? ".Relu()" : "";
                    body.AppendLine($"        var {y} = {x}.{call}{relu};");
                    (h, w) = ((h + 2 * p - 2) / s + 1, (w + 2 * p - 2) / s + 1);
                    break;
                }
                case 3:
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"BatchNorm2d({c})", "BatchNorm2d")}).{s_activations[r.Next(s_activations.Length)]};");
                    break;
                case 4:
                {
                    // A residual block: two shape-keeping convolutions (the second without an activation), added to x.
                    string a = Conv(c, c, 3, 1, 1, r.Next(2) == 0), b = Conv(c, c, 3, 1, 1, true);
                    body.AppendLine($"        var {y} = ({x}.Apply({a}).Relu().Apply({b}) + {x}).Relu();");
                    break;
                }
                case 5:
                {
                    int ca = r.Next(1, 4), cb = r.Next(1, 4);
                    string a = Conv(c, ca, 1, 1, 0, true), b = Conv(c, cb, 3, 1, 1, r.Next(2) == 0);
                    body.AppendLine($"        var {y} = Tensor.Concat(1, {x}.Apply({a}).Relu(), {x}.Apply({b}).Tanh());");
                    c = ca + cb;
                    break;
                }
                case 6:
                    // A squeeze-and-excitation style gate: [C, H, W] times a broadcast [C, 1, 1].
                    body.AppendLine($"        var {y} = {x} * {x}.AdaptiveAvgPool2d(1).Sigmoid();");
                    break;
                case 7:
                    // One value read twice by one op: both operands' gradients land in the same buffer.
                    body.AppendLine(r.Next(5) switch
                    {
                        0 => $"        var {y} = {x} * {F(0.5 + r.NextDouble())} + {F(r.NextDouble() - 0.5)};",
                        1 => $"        var {y} = 1f - {x}.Sigmoid();",
                        2 => $"        var {y} = {x} + {x};",
                        3 => $"        var {y} = {x} * {x};",
                        _ => $"        var {y} = ({x} - {x}.Tanh()) * {x};",
                    });
                    break;
                case 8 when h * w <= 36:
                    body.AppendLine($"        var {y} = {x}.Upsample(2{(r.Next(2) == 0 ? ", UpsampleMode.Bilinear" : "")});");
                    (h, w) = (2 * h, 2 * w);
                    break;
                case 9 when c % 2 == 0:
                {
                    body.AppendLine($"        var ({y}a, {y}b) = {x}.Chunk(2, 1);");
                    body.AppendLine($"        var {y} = {y}a.Relu() * {y}b.Sigmoid();");
                    c /= 2;
                    break;
                }
                case 10 when c % 2 == 0:
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"GroupNorm(2, {c})", "GroupNorm")}).Silu();");
                    break;
                case 11 when h >= 5 && w >= 5:
                {
                    // Dilated: the window spans 5 pixels.
                    int cout = r.Next(2, 5), p = r.Next(0, 3);
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"Conv2d({c}, {cout}, kernel: 3, padding: {p}, dilation: 2)", "Conv2d")}).Relu();");
                    (c, h, w) = (cout, h + 2 * p - 4, w + 2 * p - 4);
                    break;
                }
                case 12 when h * w <= 36:
                {
                    int cout = r.Next(1, 5);
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"ConvTranspose2d({c}, {cout}, kernel: 2, stride: 2)", "ConvTranspose2d")}).Gelu();");
                    (c, h, w) = (cout, 2 * h, 2 * w);
                    break;
                }
                case 13:
                    // Each pixel less its mean over the channels: a [1, H, W] broadcast back over C.
                    body.AppendLine($"        var {y} = {x} - {x}.Mean(1, keepDim: true);");
                    break;
                default:
                    body.AppendLine($"        var {y} = {x}.{s_activations[r.Next(s_activations.Length)]};");
                    break;
            }
            x = y;
        }
        int hidden = r.Next(3, 9);
        string fc1 = Layer($"Linear({c * h * w}, {hidden}, bias: {(r.Next(4) > 0 ? "true" : "false")})", "Linear"), fc2 = Layer($"Linear({hidden}, {Classes})", "Linear");
        body.AppendLine($"        return {x}.Flatten().Apply({fc1}).{s_activations[r.Next(s_activations.Length)]}.Apply({fc2});");
        return new RandomNet(name, Class(name, $"{input[0]}, {input[1]}, {input[2]}", layers, body), input);
    }

    private const int Vocabulary = 20, MaxSequence = 7;

    /// <summary>
    /// A network on token ids of any length T ≤ MaxSequence with Hugging Face's mask: word (and position) embeddings,
    /// then per-position layers, masked self-attention, LSTM/GRU layers and residual adds over [T, D], then a pooling
    /// over T (the first token, the masked mean, a masked softmax-weighted sum) and a classifier.
    /// </summary>
    private static RandomNet SequenceNet(Random r, int index)
    {
        string name = "Sequence" + index;
        var layers = new Layers();
        var body = new StringBuilder();
        int value = 0, d = 2 * r.Next(2, 5);
        string Layer(string attribute, string type) => layers.Add(attribute, type);
        string x = "h" + value++;
        string positions = r.Next(2) == 0 ? $".Apply({Layer($"PositionEmbedding({MaxSequence + 1}, {d})", "PositionEmbedding")})" : "";
        body.AppendLine($"        var {x} = ids.Apply({Layer($"Embedding({Vocabulary}, {d})", "Embedding")}){positions};");
        int steps = r.Next(1, 5);
        for (int step = 0; step < steps; step++)
        {
            string y = "h" + value++;
            switch (r.Next(6))
            {
                case 0:
                {
                    int o = 2 * r.Next(1, 5);
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"Linear({d}, {o})", "Linear")}).{s_activations[r.Next(s_activations.Length)]};");
                    d = o;
                    break;
                }
                case 1:
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"LayerNorm({d})", "LayerNorm")});");
                    break;
                case 2:
                {
                    int heads = d % 4 == 0 && r.Next(2) == 0 ? 2 : 1;
                    string attention = Layer($"SelfAttention({d}, {heads})", "SelfAttention"), output = Layer($"Linear({d}, {d})", "Linear");
                    body.AppendLine($"        var {y} = ({x} + {x}.Apply({attention}).Apply({output})).Apply({Layer($"LayerNorm({d})", "LayerNorm")});");
                    break;
                }
                case 3:
                {
                    int hidden = r.Next(2, 5);
                    bool lstm = r.Next(2) == 0, both = r.Next(2) == 0;
                    string kind = lstm ? "LSTM" : "GRU";
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"{kind}({d}, {hidden}, numLayers: {r.Next(1, 3)}, bidirectional: {(both ? "true" : "false")})", kind)});");
                    d = both ? 2 * hidden : hidden;
                    break;
                }
                case 4:
                    body.AppendLine($"        var {y} = {x} + {x}.Apply({Layer($"Linear({d}, {d})", "Linear")}).Gelu();");
                    break;
                default:
                    body.AppendLine($"        var {y} = {x}.{s_activations[r.Next(s_activations.Length)]};");
                    break;
            }
            x = y;
        }
        string pooled = r.Next(4) switch
        {
            0 => $"{x}.SelectToken(0)",
            1 => $"{x}.MeanOverSequence()",
            2 => $"({x} * {x}.Apply({Layer($"Linear({d}, 1)", "Linear")}).Softmax(1)).Sum(1)",
            _ => $"({x}.SelectToken(0) + {x}.MeanOverSequence())",
        };
        body.AppendLine($"        return {pooled}.Apply({Layer($"Linear({d}, {Classes})", "Linear")});");
        return new RandomNet(name, $$"""
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = {{MaxSequence}}), CrossEntropyLoss]
            public partial class {{name}}
            {
            {{layers}}
                Tensor Forward(Tensor ids)
                {
            {{body}}    }
            }
            """, [MaxSequence]);
    }

    /// <summary>A network on feature vectors: Linear layers, norms, residual adds, splits and concatenations.</summary>
    private static RandomNet FeatureNet(Random r, int index)
    {
        string name = "Features" + index;
        int f = r.Next(2, 9);
        int[] input = [f];
        var layers = new Layers();
        var body = new StringBuilder();
        int value = 0;
        string x = "x";
        string Layer(string attribute, string type) => layers.Add(attribute, type);
        int steps = r.Next(2, 7);
        for (int step = 0; step < steps; step++)
        {
            string y = "h" + value++;
            switch (r.Next(8))
            {
                case 0 or 1:
                {
                    int o = r.Next(2, 9);
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"Linear({f}, {o}, bias: {(r.Next(3) > 0 ? "true" : "false")})", "Linear")}).{s_activations[r.Next(s_activations.Length)]};");
                    f = o;
                    break;
                }
                case 2:
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"LayerNorm({f})", "LayerNorm")});");
                    break;
                case 3:
                    body.AppendLine($"        var {y} = {x}.Apply({Layer($"BatchNorm1d({f})", "BatchNorm1d")}).Relu();");
                    break;
                case 4:
                    body.AppendLine($"        var {y} = {x} + {x}.Apply({Layer($"Linear({f}, {f})", "Linear")}).Gelu();");
                    break;
                case 5 when f >= 2:
                {
                    int a = r.Next(1, f);
                    body.AppendLine(r.Next(3) == 0
                        ? $"        var {y} = Tensor.Concat(1, {x}, {x});"
                        : $"        var {y} = Tensor.Concat(1, {x}.Narrow(1, 0, {a}).Tanh(), {x}.Narrow(1, {a}, {f - a}) * 2f, {x}.Relu());");
                    f = 2 * f;
                    break;
                }
                case 6:
                {
                    // One layer applied twice: its weights are shared, their gradients summed.
                    string shared = Layer($"Linear({f}, {f})", "Linear");
                    body.AppendLine($"        var {y} = {x}.Apply({shared}).Tanh().Apply({shared});");
                    break;
                }
                default:
                    body.AppendLine($"        var {y} = {x} * {x}.Sigmoid();");
                    break;
            }
            x = y;
        }
        body.AppendLine($"        return {x}.Apply({Layer($"Linear({f}, {Classes})", "Linear")});");
        return new RandomNet(name, Class(name, input[0].ToString(CultureInfo.InvariantCulture), layers, body), input);
    }

    private static string Class(string name, string input, Layers layers, StringBuilder body) => $$"""
        [Network, Input({{input}}), CrossEntropyLoss]
        public partial class {{name}}
        {
        {{layers}}
            Tensor Forward(Tensor x)
            {
        {{body}}    }
        }
        """;
}

/// <summary>The device test runs alone: ILGPU's CPU accelerator runs a group's threads in lockstep on the two cores,
/// which the other test classes' threads would starve (and it theirs).</summary>
[CollectionDefinition(nameof(RandomDeviceNetworkTests), DisableParallelization = true)]
public sealed class RandomDeviceNetworkCollection;

[Collection(nameof(RandomDeviceNetworkTests))]
public class RandomDeviceNetworkTests
{
    /// <summary>
    /// Other random networks through the device twin on ILGPU's CPU accelerator: the generated fused kernels and the
    /// library kernels give the CPU network's logits, loss, gradients and inference — image and feature networks, and
    /// sequence networks on right-padded batches.
    /// </summary>
    [Fact]
    public void RandomNetworks_OnTheDevice_MatchTheCpu() => RandomNetworkTests.DeviceTwinsMatchTheCpu();
}
