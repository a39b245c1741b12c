using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>
    /// What an op's GPU emission sees: the spec, the plan, the writer, the device twin's names for values
    /// (<c>_v{id}</c>, <c>_r{id}</c> before a chained bias), their gradients (<c>_g{id}</c>) and parameters, and a
    /// count of the launches it writes.
    /// </summary>
    internal sealed class GpuContext : EmitContext
    {
        public GpuContext(NetworkSpec spec, Plan plan, SourceWriter writer) : base(spec, plan, writer) { }

        /// <summary>Kernel launches written so far by the pass being emitted.</summary>
        public int Launches { get; set; }

        /// <summary>Device memory ops keep for the twin's life (a batch norm's statistics): field name and length.</summary>
        public List<(string Field, string Length)> Persistent { get; } = new();

        /// <summary>Per-sample regions of the integer arena (a max-pool's winners).</summary>
        public List<(string Field, long PerSample)> IntRegions { get; } = new();

        /// <summary>Declares (once) an integer region of <paramref name="perSample"/> ints per sample; returns its field.</summary>
        public string IntRegion(string field, long perSample)
        {
            if (!IntRegions.Any(p => p.Field == field)) IntRegions.Add((field, perSample));
            return field;
        }

        /// <summary>What library calls need as scratch, as expressions of <c>batch</c>; the twin allocates the largest.</summary>
        public List<string> ScratchSizes { get; } = new();

        /// <summary>Declares a call's scratch need; returns the scratch view's name.</summary>
        public string Scratch(string size)
        {
            if (!ScratchSizes.Contains(size)) ScratchSizes.Add(size);
            return "Scratch";
        }

        /// <summary>Shapes ops pass to library kernels, as static arrays of the twin (no allocation per call).</summary>
        public List<(string Field, string Values)> Constants { get; } = new();

        /// <summary>Declares (once) a static int array; returns its field.</summary>
        public string Constant(string field, IEnumerable<int> values)
        {
            if (!Constants.Any(p => p.Field == field)) Constants.Add((field, string.Join(", ", values)));
            return field;
        }

        /// <summary>Per-sample regions of the activation arena ops save for backward (a layer norm's row statistics).</summary>
        public List<(string Field, long PerSample)> Saved { get; } = new();

        /// <summary>Declares (once) a saved region of <paramref name="perSample"/> floats per sample; returns its field.</summary>
        public string Region(string field, long perSample)
        {
            if (!Saved.Any(p => p.Field == field)) Saved.Add((field, perSample));
            return field;
        }

        /// <summary>Declares (once) a persistent device view of <paramref name="length"/> floats; returns its field.</summary>
        public string State(string field, string length)
        {
            if (!Persistent.Any(p => p.Field == field)) Persistent.Add((field, length));
            return field;
        }

        /// <summary>Writes a launch (a statement) and counts it.</summary>
        public void Launch(string statement, int launches = 1) { Writer.Line(statement); Launches += launches; }

        /// <summary>The device view holding a value (the uploaded batch for the input; one of several: its own buffer).</summary>
        public string Value(int value) => Storage(value) == Spec.TargetInput ? (Spec.IsMultiple ? "MethodTargets" : "TargetValues")
            : IsData(value) ? (Spec.IsMultiple ? $"InputAt({InputIndex(value)})" : "Input") : $"_v{Storage(value)}";

        /// <summary>The uploaded token ids a value reads (an input of token ids).</summary>
        public string TokenInput(int value) => Storage(value) == Spec.TargetInput ? (Spec.IsMultiple ? "MethodLabels" : "Labels")
            : Spec.IsMultiple ? $"TokenInputAt({InputIndex(value)})" : "TokenInput";

        /// <summary>An input's uploaded token ids grouped by id (EmbeddingRuns), for an embedding's backward; null for the
        /// labels of a loss method, which the kernel reads back from the device.</summary>
        public string? TokenRuns(int value) => Storage(value) == Spec.TargetInput ? null
            : Spec.IsMultiple ? $"TokenRunsAt({InputIndex(value)})" : "TokenRuns";

        /// <summary>Which of the twin's inputs a value is (a twin of several outputs and one input has input 0).</summary>
        private int InputIndex(int value)
        {
            if (!Spec.IsMultiInput) return 0;
            int storage = Storage(value);
            for (int i = 0; i < Spec.Inputs.Count; i++) if (Spec.Inputs[i].Value == storage) return i;
            throw new System.InvalidOperationException($"value {value} is no input");
        }

        /// <summary>Where an op writes: its value, or the raw region its bias chain reads.</summary>
        public string Output(OpSpec op) => Plan.BiasInChain.Contains(op.Id) ? $"_r{op.Id}" : $"_v{op.Id}";

        public string Gradient(int value) => $"_g{Storage(value)}";

        /// <summary>The gradient view an op's backward adds its input's gradient to, or default — for the network's data,
        /// and at run time where nothing upstream trains (<c>n{value}</c> false) — so the kernel skips that work.</summary>
        public string GradientIfNeeded(int value) => IsData(value) ? "default" : $"(n{value} ? {Gradient(value)} : default)";

        /// <summary>A parameter's device values.</summary>
        public string Read(OpSpec op, string suffix) => $"Value(_net.{Param(op, suffix).Field})";

        /// <summary>Whether a parameter trains (at run time: freezing may change between steps).</summary>
        public string Trains(OpSpec op, string suffix) => $"_net.{Param(op, suffix).Field}.RequiresGrad";

        /// <summary>A parameter's device gradient, or default where it is frozen, so the kernel leaves it alone (the CPU's
        /// kernels take an empty span the same way).</summary>
        public string ParameterGradient(OpSpec op, string suffix) => $"({Trains(op, suffix)} ? {TrainedGradient(op, suffix)} : default)";

        /// <summary>A parameter's device gradient, for a launch written under <see cref="Trains"/>.</summary>
        public string TrainedGradient(OpSpec op, string suffix) => $"Gradient(_net.{Param(op, suffix).Field})";
    }

    /// <summary>
    /// Spec + <see cref="Plan"/> → a network's device twin (<c>Net.OnDevice</c>, from <c>net.ToDevice(device)</c>),
    /// emitted only when the compilation references Compiled.Nets.Gpu. It walks the same units as the CPU emitter: each
    /// primary op launches its library kernels (from its <see cref="OpDefinition"/>), each elementwise chain — bias,
    /// activations — is one generated ILGPU kernel forward and one backward, which also sums the chained bias's gradient;
    /// a max-pool followed only by a ReLU applies it in its own kernel (the plan's pool + ReLU), and a max-pool that alone
    /// reads a convolution (the plan's convolution + pool) reads the convolution's GEMM output where it lies and routes
    /// its gradient back into that layout.
    /// </summary>
    internal static class GpuEmitter
    {
        public static string HintName(NetworkSpec s) => CpuEmitter.HintName(s).Replace(".g.cs", ".Gpu.g.cs");

        /// <summary>Why a network has no device twin yet (null when it has one).</summary>
        public static string? Unsupported(NetworkSpec s)
        {
            if (LossUse.Of(s).FirstOrDefault(u => Device(u.Definition.Kind) is null) is { } other) return "the " + other.Definition.Name;
            var missing = s.Ops.Where(o => !OpTable.Of(o.Kind).OnGpuFor(s, o)).Select(o => OpTable.Of(o.Kind).Name + (OpTable.Of(o.Kind).OnGpu ? " with these arguments" : ""))
                .Concat(s.Ops.Where(o => OpTable.Of(o.Kind).OnGpuFor(s, o) && !OpTable.Of(o.Kind).OnGpuOverSequence && (Shapes.HasSequence(o.InShape) || Shapes.HasSequence(o.OutShape)))
                    .Select(o => OpTable.Of(o.Kind).Name + " over a sequence"))
                .Distinct().ToList();
            return missing.Count == 0 ? null : string.Join(", ", missing);
        }

        /// <summary>The DeviceLoss member of a loss the device has, or null.</summary>
        private static string? Device(LossKind kind) => kind switch
        {
            LossKind.CrossEntropy or LossKind.Nll or LossKind.Mse or LossKind.L1 or LossKind.SmoothL1 or LossKind.BceWithLogits or LossKind.KlDiv
                or LossKind.CosineEmbedding => kind.ToString(),
            LossKind.Custom or LossKind.CustomClassIndices => "Method",
            _ => null,
        };

        /// <summary>The outputs' values, in Forward's order.</summary>
        private static IReadOnlyList<int> OutputValues(NetworkSpec s) => s.IsMultiOutput ? s.Outputs.Select(o => o.Value).ToList() : new[] { s.Output };

        /// <summary>The inputs, in Forward's order (one without names: "input").</summary>
        private static IReadOnlyList<InputSpec> InputsOf(NetworkSpec s) => s.IsMultiInput ? s.Inputs.ToList() : new[] { new InputSpec("input", s.InputShape, s.TokenInput, 0) };

        /// <summary>The network trains on float targets with a loss the device has (its DeviceLoss member is named as its LossKind).</summary>
        private static bool FloatTargetLoss(NetworkSpec s) => s.Loss is LossKind.Mse or LossKind.L1 or LossKind.SmoothL1 or LossKind.BceWithLogits or LossKind.KlDiv;

        /// <summary>A one-output twin's loss, when it is not plain cross-entropy: its kind, parameter, class weights, ignored label.</summary>
        private static void EmitLossMembers(SourceWriter w, NetworkSpec s, GpuContext c)
        {
            if (s.Loss == LossKind.None) w.Line($"public override {Gpu}DeviceLoss TrainedLoss => {Gpu}DeviceLoss.None;");
            if (s.Loss == LossKind.Nll) w.Line($"public override {Gpu}DeviceLoss TrainedLoss => {Gpu}DeviceLoss.Nll;");
            if (s.Loss is LossKind.Custom or LossKind.CustomClassIndices)
            {
                w.Line($"public override {Gpu}DeviceLoss TrainedLoss => {Gpu}DeviceLoss.Method;");
                EmitMethodMembers(w, s, c);
            }
            if (s.Loss is LossKind.CrossEntropy or LossKind.Nll && LossUse.Of(s)[0] is { } use && CrossEntropyLoss.Weighted(use))
            {
                if (use.ClassWeights.Count > 0) w.Line($"protected override float[]? ClassWeights => s_classWeights; // {use.Definition.Name}.Weights");
                if (use.ClassWeights.Count > 0) w.Line($"private static readonly float[] s_classWeights = new float[] {{ {string.Join(", ", use.ClassWeights.Select(x => SourceWriter.FloatLiteral(x)))} }};");
                if (use.IgnoreIndex != int.MinValue) w.Line($"protected override int IgnoreIndex => {use.IgnoreIndex};");
            }
            if (FloatTargetLoss(s))
            {
                w.Line($"public override {Gpu}DeviceLoss TrainedLoss => {Gpu}DeviceLoss.{s.Loss};");
                if (s.Loss is LossKind.SmoothL1 or LossKind.KlDiv) w.Line($"protected override float LossParameter => {SourceWriter.FloatLiteral(s.LossParameter)};");
            }
        }

        /// <summary>A loss method's members: whether it reads labels, its last value, that value's gradient, and its
        /// values per sample (over a sequence, of the batch's T).</summary>
        private static void EmitMethodMembers(SourceWriter w, NetworkSpec s, GpuContext c)
        {
            var shape = s.Ops[s.LossValue].OutShape;
            int fixedPart = Shapes.Product(shape.Where(d => d != Shapes.Sequence));
            string perSample = string.Join(" * ", shape.Where(d => d == Shapes.Sequence).Select(_ => "SequenceLength").Append(SourceWriter.IntLiteral(fixedPart)));
            if (LossUse.Of(s).Any(u => u.Definition.Kind == LossKind.CustomClassIndices)) w.Line("protected override bool MethodOnLabels => true;");
            w.Line($"protected override {ArrayView}<float> LossValues => {c.Value(s.LossValue)};");
            w.Line($"protected override {ArrayView}<float> LossValuesGradient => {c.Gradient(s.LossValue)};");
            w.Line($"protected override int LossValuesPerSample => {perSample};");
        }

        /// <summary>A twin of several inputs or outputs: its inputs and losses as the base reads them, the outputs' views
        /// and gradients, and each cross-entropy head's softmax region.</summary>
        private static void EmitMultiMembers(SourceWriter w, NetworkSpec s, GpuContext c, IReadOnlyList<LossUse> heads, IReadOnlyList<int> outputs)
        {
            var inputs = InputsOf(s);
            int Vocabulary(InputSpec input) => s.Ops.Where(o => o.Kind == OpKind.Embedding && c.Storage(o.Input) == input.Value).Select(o => s.Layers[o.Layer].Ints[0])
                .Concat(s.Ops.Where(o => o.Kind == OpKind.OneHot && c.Storage(o.Input) == input.Value).Select(o => o.Ints[0])).DefaultIfEmpty(0).Min();
            string Input(InputSpec i) => $"new(\"{i.Name}\", {(i.Tokens ? "true" : "false")}, {Shapes.Product(i.Shape.Where(d => d != Shapes.Sequence))}, {(i.Tokens ? Vocabulary(i) : 0)}" +
                (Shapes.HasSequence(i.Shape) ? ", sequence: true)" : ")");
            w.Line($"private static readonly {Gpu}DeviceInput[] s_deviceInputs = new {Gpu}DeviceInput[] {{ {string.Join(", ", inputs.Select(Input))} }};");
            w.Line($"private static readonly {Gpu}DeviceHead[] s_deviceHeads = new {Gpu}DeviceHead[]");
            w.Line("{");
            foreach (var u in heads)
            {
                string weights = u.ClassWeights.Count > 0 ? $"new float[] {{ {string.Join(", ", u.ClassWeights.Select(x => SourceWriter.FloatLiteral(x)))} }}" : "null";
                w.Line($"    new({u.OutputIndex}, {Gpu}DeviceLoss.{Device(u.Definition.Kind)}, {SourceWriter.FloatLiteral(u.Parameter)}, {SourceWriter.FloatLiteral(u.Weight)}, \"{u.TargetName}\", {weights}, {u.IgnoreIndex}{(u.OutputIndex2 >= 0 ? $", output2: {u.OutputIndex2}" : "")}),");
            }
            w.Line("};");
            w.Line($"protected override global::System.Collections.Generic.IReadOnlyList<{Gpu}DeviceInput> InputLayout => s_deviceInputs;");
            w.Line($"protected override global::System.Collections.Generic.IReadOnlyList<{Gpu}DeviceHead> HeadLayout => s_deviceHeads;");
            string Switch(string what, IEnumerable<string> arms) =>
                $"{what} switch {{ {string.Join(", ", arms.Select((a, i) => $"{i} => {a}").Append($"_ => throw new global::System.ArgumentOutOfRangeException(nameof({what}))"))} }}";
            w.Line($"protected override {ArrayView}<float> OutputAt(int output) => {Switch("output", outputs.Select(c.Value))};");
            w.Line($"protected override {ArrayView}<float> OutputGradientAt(int output) => {Switch("output", outputs.Select(c.Gradient))};");
            w.Line($"protected override {ArrayView}<float> HeadProbabilities(int head) => {Switch("head", heads.Select((_, h) => $"_probs{h}"))};");
            if (s.LossValue >= 0) EmitMethodMembers(w, s, c);
        }

        /// <summary>The names of the outputs, in Forward's order ("output" for the one output of several inputs).</summary>
        private static IReadOnlyList<string> OutputNames(NetworkSpec s) => s.IsMultiOutput ? s.Outputs.Select(o => o.Name).ToList() : new[] { "output" };

        /// <summary>The inputs' and outputs' slots of a twin without losses, as an IMultiNetwork's would be.</summary>
        private static void EmitSlots(SourceWriter w, NetworkSpec s)
        {
            string slot = Runtime + "TensorSlot";
            var outputs = OutputNames(s).Zip(OutputValues(s), (name, value) => $"new(\"{name}\", {CpuEmitter.ShapeLiteral(s.Ops[value].OutShape)}, false)");
            w.Line($"private static readonly {slot}[] s_inputSlots = new {slot}[] {{ {string.Join(", ", InputsOf(s).Select(i => $"new(\"{i.Name}\", {CpuEmitter.ShapeLiteral(i.Shape)}, {(i.Tokens ? "true" : "false")})"))} }};");
            w.Line($"private static readonly {slot}[] s_outputSlots = new {slot}[] {{ {string.Join(", ", outputs)} }};");
        }

        /// <summary>A twin of several inputs or outputs: Forward over spans, as its CPU class's (with the mask and the
        /// sequence length over a sequence).</summary>
        private static void EmitSpanForward(SourceWriter w, NetworkSpec s)
        {
            var inputs = InputsOf(s);
            var outputs = OutputNames(s);
            bool sequence = s.MaxSequence > 0;
            w.Line();
            w.Line("/// <summary>Inference in evaluation mode, as the CPU network's Forward: each input span goes up, each output comes back.</summary>");
            w.Open($"public void Forward({CpuEmitter.InputParams(s)}, {CpuEmitter.BatchParams(sequence)}, {CpuEmitter.OutputParams(outputs, optional: false)})");
            w.Line("using var exclusive = EnterDevice(); // one call at a time on the device");
            w.Line($"BeginForward({(sequence ? "mask, batch, sequence" : "batch")}, {string.Join(", ", outputs.Select(o => o + ".Length"))});");
            for (int i = 0; i < inputs.Count; i++) w.Line($"UploadInput({i}, {(s.IsMultiInput ? inputs[i].Name : "input")}, batch);");
            w.Line("RunInference(batch);");
            for (int o = 0; o < outputs.Count; o++) w.Line($"DownloadOutput({o}, {outputs[o]});");
            w.Close();
        }

        /// <summary>The assembly attribute that lets ILGPU's CPU accelerator call the generated kernels of internal networks.</summary>
        public static string AssemblyInfo() =>
            "// <auto-generated/>\n// ILGPU's CPU accelerator calls kernels from a dynamic assembly of this name; generated kernels of internal networks need it.\n" +
            "[assembly: global::System.Runtime.CompilerServices.InternalsVisibleTo(\"ILGPURuntime\")]\n";

        public static string Emit(NetworkSpec s)
        {
            var w = new SourceWriter();
            CpuEmitter.OpenPartial(w, s, "// Generated by Compiled.Nets from the [Network] declaration: the network's twin on a GPU (Compiled.Nets.Gpu).");
            string reason = Unsupported(s) ?? TooManyParameters(s) ?? "";
            if (reason.Length > 0)
            {
                w.Line("/// <summary>The GPU backend cannot run this network yet; the exception names what it lacks.</summary>");
                w.Line($"public {Gpu}DeviceNetwork ToDevice({Gpu}GpuDevice device) => throw new global::System.NotSupportedException(\"{s.TypeName}: the GPU backend has no kernels yet for {reason}; train it on the CPU.\");");
            }
            else EmitTwin(w, s);
            w.Close();
            foreach (var _ in s.ContainingTypes) w.Close();
            if (s.Namespace.Length > 0) w.Close();
            return w.ToString();
        }

        /// <summary>ILGPU's kernel loaders bind delegates of at most this many parameters.</summary>
        private const int MaxKernelParameters = 14;

        /// <summary>Why a network's fused chain cannot be one kernel (a long run of elementwise ops after one op, each
        /// stored value a parameter), or null.</summary>
        private static string? TooManyParameters(NetworkSpec s)
        {
            var plan = Planner.Build(s);
            var c = new GpuContext(s, plan, new SourceWriter());
            var chain = plan.Units.Select(u => Chain(c, u)).FirstOrDefault(k => k is not null && k.Parameters > MaxKernelParameters);
            return chain is null ? null : $"a chain of {chain.Unit.Stages.Count} elementwise stages after one op (its fused kernel would take {chain.Parameters} parameters, ILGPU's at most {MaxKernelParameters})";
        }

        private static void EmitTwin(SourceWriter w, NetworkSpec s)
        {
            var plan = Planner.Build(s);
            var c = new GpuContext(s, plan, w);
            // A max-pool that applies the ReLU after it writes the ReLU's value, and one that reads a convolution's GEMM
            // output takes the convolution in: their own values and gradients never exist.
            var values = s.Ops.Where(o => o.Kind != OpKind.Input && !OpTable.Of(o.Kind).IsView && !plan.PoolRelu.Contains(o.Id) && !plan.IsPooledConvolution(o.Id)).ToList();
            var chains = plan.Units.Select(u => Chain(c, u)).ToList();

            w.Line("/// <summary>A twin of this network on <paramref name=\"device\"/>, with a copy of its parameters there.</summary>");
            w.Line($"public OnDevice ToDevice({Gpu}GpuDevice device) => new OnDevice(this, device);");
            w.Line();
            w.Line("/// <summary>The network on a GPU: forward, loss and backward as kernel launches, the elementwise chains fused.</summary>");
            // The interface the CPU network trains through, so the Trainer and evaluation take the twin as they take the network.
            bool multi = s.IsMultiple;
            if (multi) w.Open($"public sealed class OnDevice : {Gpu}MultiDeviceNetwork");
            else
            {
                // The CPU class's interface: the twin takes the same calls.
                w.Open($"public sealed class OnDevice : {Gpu}DeviceNetwork, {CpuEmitter.InterfaceName(s.TokenInput, s.MaxSequence > 0, s.Loss)}");
            }
            w.Line($"private readonly {s.TypeName} _net;");
            if (!multi)
            {
                w.Line($"global::System.Collections.Generic.IReadOnlyList<int> {Runtime}INetwork.InputShape => (({Runtime}INetwork)_net).InputShape;");
                w.Line($"int {Runtime}INetwork.InputSize => (({Runtime}INetwork)_net).InputSize;");
                w.Line($"global::System.Collections.Generic.IReadOnlyList<int> {Runtime}INetwork.OutputShape => (({Runtime}INetwork)_net).OutputShape;");
                w.Line($"int {Runtime}INetwork.OutputSize => (({Runtime}INetwork)_net).OutputSize;");
                w.Line($"{Runtime}ParameterStore {Runtime}INetwork.Parameters => HostParameters;");
            }
            if (s.MaxSequence > 0 && !multi) w.Line($"int {Runtime}ISequenceNetwork.MaxSequence => MaxSequence;");

            // Layout: per-sample offsets in the activation, gradient and integer arenas.
            long act = 0, grad = 0, ints = 0;
            var actRegions = new List<(string Name, long Offset, long Size)>();
            var gradRegions = new List<(string Name, long Offset, long Size)>();
            var intRegions = new List<(string Name, long Offset, long Size)>();
            // A chain a layer norm applies as it reads (the plan's norm of a sum with a branch) stores nothing: its values,
            // its mask (drawn again in backward) and their gradients are never formed; its Linear's raw output and that
            // output's gradient remain.
            var branchValues = new HashSet<int>(plan.NormAdd.Where(p => p.Branch >= 0)
                .SelectMany(p => plan.Units.First(u => u.Primary?.Id == p.Branch).Stages.Select(st => st.Value).Where(v => v != p.Branch)));
            var biasedBranches = new HashSet<int>(plan.NormAdd.Where(p => p.Branch >= 0 && plan.BiasInChain.Contains(p.Branch)).Select(p => p.Branch));
            foreach (var op in values)
            {
                long size = Shapes.MaxSize(s, op.OutShape);
                if (branchValues.Contains(op.Id)) continue;
                if (!biasedBranches.Contains(op.Id)) { actRegions.Add(($"_v{op.Id}", act, size)); act += size; }
                if (plan.BiasInChain.Contains(op.Id)) { actRegions.Add(($"_r{op.Id}", act, size)); act += size; }
                // A residual add a layer norm reads keeps its sum (the norm's backward reads it) but never its gradient.
                if (!plan.IsNormedAdd(op.Id)) { gradRegions.Add(($"_g{op.Id}", grad, size)); grad += size; }
                if (OpTable.Of(op.Kind).GradientSource == GradientSource.Mask && OpTable.Of(op.Kind).IsElementwise) { actRegions.Add(($"_m{op.Id}", act, size)); act += size; }
            }
            var heads = LossUse.Of(s);
            var outputValues = OutputValues(s);
            if (!s.IsMultiple)
            {
                long classes = Shapes.MaxSize(s, s.Ops[s.Output].OutShape);
                actRegions.Add(("_probs", act, classes)); act += classes;
            }
            else
                for (int h = 0; h < heads.Count; h++)
                {
                    // A cross-entropy head's softmax (the other heads' regions go unused).
                    long size = Shapes.MaxSize(s, s.Ops[outputValues[heads[h].OutputIndex]].OutShape);
                    actRegions.Add(($"_probs{h}", act, size)); act += size;
                }
            // Passes first: they count their launches and declare the state ops keep.
            var body = new SourceWriter();
            var pc = new GpuContext(s, plan, body);
            EmitForwardPass(pc, chains);
            int forward = pc.Launches;
            pc.Launches = 0;
            EmitBackwardPass(pc, chains);
            int backward = pc.Launches;

            foreach (var r in pc.Saved) { actRegions.Add((r.Field, act, r.PerSample)); act += r.PerSample; }
            foreach (var r in pc.IntRegions) { intRegions.Add((r.Field, ints, r.PerSample)); ints += r.PerSample; }
            foreach (var r in actRegions.Concat(gradRegions)) w.Line($"private {ArrayView}<float> {r.Name};");
            foreach (var p in pc.Persistent) w.Line($"private readonly {ArrayView}<float> {p.Field};");
            foreach (var p in pc.Constants) w.Line($"private static readonly int[] {p.Field} = new int[] {{ {p.Values} }};");
            foreach (var r in intRegions) w.Line($"private {ArrayView}<int> {r.Name};");
            foreach (var ch in chains.Where(x => x is not null))
            {
                w.Line($"private readonly {ch!.ForwardDelegate} _{ch.Name}Forward;");
                w.Line($"private readonly {ch.BackwardDelegate} _{ch.Name}Backward;");
            }
            w.Line();
            float smoothing = FloatTargetLoss(s) ? 0f : (float)s.LossParameter;
            // A network of several inputs or outputs without a loss has no IMultiNetwork to read its slots from: they are written here.
            if (multi && heads.Count == 0) EmitSlots(w, s);
            w.Open(multi
                ? heads.Count == 0
                    ? $"internal OnDevice({s.TypeName} net, {Gpu}GpuDevice device) : base(device, net._store, \"{s.TypeName}\", s_inputSlots, s_outputSlots)"
                    : $"internal OnDevice({s.TypeName} net, {Gpu}GpuDevice device) : base(device, net, \"{s.TypeName}\")"
                : $"internal OnDevice({s.TypeName} net, {Gpu}GpuDevice device) : base(device, net._store, \"{s.TypeName}\", {s.TypeName}.InputFeatures, \"{string.Join(", ", s.InputShape)}\", {s.TypeName}.OutputFeatures, \"{string.Join(", ", s.Ops[s.Output].OutShape)}\", {SourceWriter.FloatLiteral(smoothing)})");
            w.Line("_net = net;");
            foreach (var p in pc.Persistent) w.Line($"{p.Field} = Persistent({p.Length});");
            foreach (var ch in chains.Where(x => x is not null))
            {
                w.Line($"_{ch!.Name}Forward = {Loader}<{ch.ForwardTypes}>(device.Accelerator, {ch.Name}Forward);");
                w.Line($"_{ch.Name}Backward = {(ch.Grouped ? GroupedLoader : Loader)}<{ch.BackwardTypes}>(device.Accelerator, {ch.Name}Backward);");
            }
            w.Close();
            w.Line();

            int lossLaunches = 2 * heads.Count;
            w.Line($"/// <summary>{forward} launches forward, {lossLaunches} for the loss{(heads.Count > 1 ? "es" : "")}, {backward} backward.</summary>");
            w.Line($"public override int LaunchesPerTrainStep => {forward + lossLaunches + backward};");
            // Unfused, each stage would launch forward and backward on its own, a bias gradient would be one more sum, a
            // pooled convolution would move its output to the batch-major layout and its gradient back, and a residual add
            // a layer norm reads would add, then pass its gradient to each operand the network computes, and a chain the
            // norm applies would be its own kernels forward and backward, each of those per stage.
            static int Unfused(PlanUnit u) => 2 * (u.Stages.Count - 1) + (u.StartsWithBias ? 1 : 0);
            int unfused = chains.Where(x => x is not null).Sum(x => Unfused(x!.Unit)) + 2 * plan.PoolRelu.Count
                + 2 * plan.ConvPool.Count + plan.NormAdd.Sum(p => 1 + new[] { s.Ops[p.Add].Input, s.Ops[p.Add].Input2 }.Count(i => !c.IsData(i)))
                + plan.NormAdd.Where(p => p.Branch >= 0).Sum(p => 2 + Unfused(plan.Units.First(u => u.Primary?.Id == p.Branch)));
            w.Line($"public override int LaunchesPerTrainStepUnfused => {forward + lossLaunches + backward + unfused};");
            w.Line($"protected override long ActivationsPerSample => {act};");
            w.Line($"protected override long GradientsPerSample => {grad};");
            w.Line($"protected override long IntsPerSample => {ints};");
            w.Line(pc.ScratchSizes.Count == 0
                ? "protected override long ScratchFor(int batch) => 0;"
                : $"protected override long ScratchFor(int batch) => global::System.Linq.Enumerable.Max(new long[] {{ {string.Join(", ", pc.ScratchSizes)} }});");
            if (multi)
            {
                EmitMultiMembers(w, s, c, heads, outputValues);
                EmitSpanForward(w, s);
            }
            else
            {
                w.Line($"protected override {ArrayView}<float> Logits => {c.Value(s.Output)};");
                w.Line($"protected override {ArrayView}<float> LogitsGradient => {c.Gradient(s.Output)};");
                w.Line($"protected override {ArrayView}<float> Probabilities => _probs;");
            }
            if (s.TokenInput && !multi)
            {
                // Ids are checked on the host against the smallest table (or one-hot width) that reads them, before they go up.
                // (A loss method's OneHot of its labels reads the labels, not the ids.)
                int vocabulary = s.Ops.Where(o => o.Kind == OpKind.Embedding).Select(o => s.Layers[o.Layer].Ints[0])
                    .Concat(s.Ops.Where(o => o.Kind == OpKind.OneHot && c.Storage(o.Input) != s.TargetInput).Select(o => o.Ints[0])).DefaultIfEmpty(0).Min();
                w.Line($"protected override int TokenVocabulary => {vocabulary};");
            }
            if (s.MaxSequence > 0) w.Line($"protected override int MaxSequence => {s.TypeName}.MaxSequence;");
            if (s.MaxSequence > 0 && !s.TokenInput && !multi) w.Line($"protected override int InputPerPosition => {Shapes.Product(s.InputShape.Where(d => d != Shapes.Sequence))};");
            if (!multi && Shapes.HasSequence(s.Ops[s.Output].OutShape)) w.Line($"protected override int OutputPerPosition => {Shapes.Product(s.Ops[s.Output].OutShape.Where(d => d != Shapes.Sequence))};");
            if (!multi) EmitLossMembers(w, s, c);
            w.Line();
            w.Open("protected override void BindWorkspace()");
            foreach (var r in actRegions) w.Line($"{r.Name} = Activation({r.Offset}, {r.Size});");
            foreach (var r in gradRegions) w.Line($"{r.Name} = ActivationGradient({r.Offset}, {r.Size});");
            foreach (var r in intRegions) w.Line($"{r.Name} = IntRegion({r.Offset}, {r.Size});");
            w.Close();
            w.Line();
            w.Paste(body.ToString());
            foreach (var ch in chains.Where(x => x is not null)) { w.Line(); w.Paste(ch!.Kernels); }
            w.Close();
        }

        private const string ArrayView = "global::ILGPU.ArrayView";
        private const string Index1D = "global::ILGPU.Index1D";
        private const string Loader = "global::ILGPU.Runtime.KernelLoaders.LoadAutoGroupedStreamKernel";
        private const string GroupedLoader = "global::ILGPU.Runtime.KernelLoaders.LoadStreamKernel";

        private static void EmitForwardPass(GpuContext c, List<ChainKernel?> chains)
        {
            var w = c.Writer;
            w.Open("protected override void RunForward(int batch, bool training)");
            SequenceLength(c);
            bool lossOpened = false;
            for (int k = 0; k < c.Plan.Units.Count; k++)
            {
                var u = c.Plan.Units[k];
                if (!lossOpened && c.Spec.IsLossOp(u.Primary?.Id ?? u.Stages[0].Value))
                {
                    // The loss method's ops: for a loss, not for inference.
                    w.Open("if (WithLoss)");
                    lossOpened = true;
                }
                if (u.Primary is { } op)
                {
                    w.Line($"// {op.Label}: {Shapes.Batched(op.InShape)} -> {Shapes.Batched(op.OutShape)}");
                    OpTable.Of(op.Kind).EmitGpuForward(c, op);
                }
                if (chains[k] is { } ch)
                {
                    w.Line($"// fused: {string.Join(" + ", ch.Unit.Stages.Select(st => st.Title))}  {Shapes.Batched(c.Spec.Ops[ch.Unit.Last].OutShape)}");
                    c.Launch($"Device.RecordLaunch(); _{ch.Name}Forward({ch.ForwardArgs});");
                }
            }
            if (lossOpened) w.Close();
            w.Close();
            w.Line();
        }

        private static void EmitBackwardPass(GpuContext c, List<ChainKernel?> chains)
        {
            var w = c.Writer;
            w.Open("protected override void RunBackward(int batch)");
            SequenceLength(c);
            c.EmitNeeds("_net.");
            var order = c.Plan.Units.Select((u, k) => (u, k)).OrderBy(x => x.u.LastIndex).Reverse();
            foreach (var (u, k) in order)
            {
                if (chains[k] is null && u.Primary is null) continue;
                w.Open($"if (n{u.Last})");
                if (chains[k] is { } ch)
                {
                    w.Line($"// fused backward: {string.Join(" + ", ch.Unit.Stages.Select(st => st.Title))}");
                    c.Launch($"{(ch.Condition is { } trains ? $"if ({trains}) {{ " : "")}Device.RecordLaunch(); _{ch.Name}Backward({ch.BackwardArgs});{(ch.Condition is null ? "" : " }")}");
                }
                if (u.Primary is { } op)
                {
                    w.Line($"// {op.Label} backward");
                    OpTable.Of(op.Kind).EmitGpuBackward(c, op);
                }
                w.Close();
            }
            w.Close();
            w.Line();
        }

        /// <summary>A sequence network's passes size [T, …] values by this batch's T, as the CPU passes do.</summary>
        private static void SequenceLength(GpuContext c)
        {
            if (c.Spec.MaxSequence > 0) c.Line("int T = SequenceLength; // this batch's sequence length (≤ MaxSequence); sizes below are expressions of it");
        }

        /// <summary>One unit's fused chain: its generated kernels and how they are declared, loaded and launched.</summary>
        private sealed class ChainKernel
        {
            public PlanUnit Unit = null!;
            public string Name = "";
            public string ForwardTypes = "", BackwardTypes = "", ForwardArgs = "", BackwardArgs = "", Kernels = "";
            /// <summary>Backward is explicitly grouped (it sums a bias's gradient): launched with a configuration first.</summary>
            public bool Grouped;
            /// <summary>When backward does nothing but sum the bias's gradient: launched only while the bias trains.</summary>
            public string? Condition;
            /// <summary>The larger kernel's parameter count (its index included).</summary>
            public int Parameters;
            public string ForwardDelegate => $"global::System.Action<{ForwardTypes}>";
            public string BackwardDelegate => Grouped ? $"global::System.Action<global::ILGPU.KernelConfig, {BackwardTypes}>" : $"global::System.Action<{BackwardTypes}>";
        }

        /// <summary>The chain of a unit as two kernels, or null when it has no stages beyond a bias its kernel adds.</summary>
        private static ChainKernel? Chain(GpuContext c, PlanUnit u)
        {
            if (u.Primary is { } pool && c.Plan.PoolRelu.Contains(pool.Id)) return null; // the max-pool's kernel applies the ReLU
            if (u.Primary is { } linear && c.Plan.IsNormedBranch(linear.Id)) return null; // the layer norm's kernel applies the bias and dropout
            if (u.Primary is { } biased && u.StartsWithBias && OpTable.Of(biased.Kind).Bias == BiasPlacement.InKernel)
                u = u with { Stages = u.Stages.Skip(1).ToEquatableArray() };
            if (u.Stages.Count == 0) return null;
            var s = c.Spec;
            bool bias = u.StartsWithBias;
            var shape = s.Ops[u.Source].OutShape;
            int cols = shape.Count == 0 ? 1 : shape[shape.Count - 1]; // a per-sample scalar is a row of one
            string rows = $"batch * {Shapes.Size(shape.Take(shape.Count - 1))}";
            string n = $"batch * {Shapes.Size(shape)}";
            string name = $"Chain{u.Last}";
            string src = bias ? $"_r{u.Source}" : c.Value(u.Source);
            bool writeDz = u.Stages.Any(st => !st.IsBias) && !c.IsData(u.Source);
            var stageValues = u.Stages.Select(st => st.Value).Distinct().ToList();
            var masks = u.Stages.Where(st => !st.IsBias && OpTable.Of(st.Kind).GradientSource == GradientSource.Mask).Select(st => st.Value).ToList();
            string F = $"{ArrayView}<float>";

            var k = new SourceWriter();
            // Forward: src → stages, each stage's value stored (backward reads them).
            var fParams = new List<string> { $"{Index1D} index", $"{F} src" };
            var fArgs = new List<string> { $"(int)({n})", src };
            if (bias) { fParams.Add($"{F} bias"); fArgs.Add(c.Read(u.Primary!, "bias")); }
            foreach (int v in stageValues) { fParams.Add($"{F} v{v}"); fArgs.Add($"_v{v}"); }
            foreach (int v in masks) { fParams.Add($"{F} m{v}"); fArgs.Add($"_m{v}"); }
            if (bias) { fParams.Add("int cols"); fArgs.Add(cols.ToString()); }
            if (masks.Count > 0) { fParams.Add("int training"); fArgs.Add("training ? 1 : 0"); fParams.Add("ulong key"); fArgs.Add("StepKey"); }
            k.Line($"/// <summary>Fused forward of {string.Join(" + ", u.Stages.Select(st => st.Title))}: one thread per element.</summary>");
            k.Open($"public static void {name}Forward({string.Join(", ", fParams)})");
            k.Line("long i = index.X;");
            k.Line("float t = src[i];");
            foreach (var st in u.Stages)
            {
                k.Line(st.IsBias ? "t += bias[i % cols];" : OpTable.Of(st.Kind).GpuStageForward(c.Spec, st, "t"));
                k.Line($"v{st.Value}[i] = t;");
            }
            k.Close();
            k.Line();

            // Backward: the stages' chain rule in reverse. With a bias, the launch is a column sum's (GpuKernels.ColumnLaunch):
            // a group per strip of columns, its slices each taking every so-many rows, their partial sums of the bias
            // gradient added in slice order — no atomics, so the same bits every run.
            string Load(string x) => (x == "src" ? "src" : x) + "[i]";
            var bParams = new List<string> { $"{F} gy", $"{F} gz", $"{F} src" };
            var bArgs = new List<string> { c.Gradient(u.Last), writeDz ? c.Gradient(u.Source) : c.Gradient(u.Last), src };
            if (bias) bArgs.Insert(0, $"K.ColumnLaunch({rows}, {cols})");
            else { bParams.Insert(0, $"{Index1D} index"); bArgs.Insert(0, $"(int)({n})"); }
            foreach (int v in stageValues) { bParams.Add($"{F} v{v}"); bArgs.Add($"_v{v}"); }
            foreach (int v in masks) { bParams.Add($"{F} m{v}"); bArgs.Add($"_m{v}"); }
            // A frozen bias's gradient is left alone (a flag: an unwanted view is never passed as an empty one); a kernel
            // that would only sum it is launched only while it trains.
            string trains = bias ? c.Trains(u.Primary!, "bias") : "";
            bool onlyBias = bias && !writeDz;
            if (bias)
            {
                bParams.Add($"{F} db"); bArgs.Add(onlyBias ? c.TrainedGradient(u.Primary!, "bias") : $"{trains} ? {c.TrainedGradient(u.Primary!, "bias")} : {c.Gradient(u.Last)}");
                bParams.Add("int rows"); bArgs.Add($"{rows}"); bParams.Add("int cols"); bArgs.Add(cols.ToString());
            }
            // One int of flags (ILGPU's kernels take at most MaxKernelParameters): bit 1 writes dz, bit 2 sums db.
            string flags = !bias ? (writeDz ? "1" : "0") : onlyBias ? "2" : $"{(writeDz ? "1" : "0")} | ({trains} ? 2 : 0)";
            bParams.Add("int flags"); bArgs.Add(flags);
            k.Line($"/// <summary>Fused backward of {string.Join(" + ", u.Stages.Select(st => st.Title))}{(bias ? ", the bias gradient summed per strip of columns" : "")}.</summary>");
            k.Open($"public static void {name}Backward({string.Join(", ", bParams)})");
            if (bias)
            {
                k.Line("int j = global::ILGPU.Grid.IdxX * global::ILGPU.Group.DimX + global::ILGPU.Group.IdxX;");
                k.Line("float sum = 0f;");
                k.Open("for (int r = global::ILGPU.Group.IdxY; r < rows && j < cols; r += global::ILGPU.Group.DimY)");
                k.Line("long i = (long)r * cols + j;");
            }
            else k.Line("long i = index.X;");
            k.Line("float g = gy[i];");
            for (int j = u.Stages.Count - 1; j >= 0; j--)
            {
                var st = u.Stages[j];
                if (st.IsBias) continue;
                int prev = j == 0 ? -1 : u.Stages[j - 1].Value;
                k.Line(OpTable.Of(st.Kind).StageBackward(st, prev, Load));
            }
            k.Line("if ((flags & 1) != 0) gz[i] += g;");
            if (bias)
            {
                k.Line("sum += g;");
                k.Close();
                k.Line($"sum = {Gpu}GpuKernels.SliceSum(sum); // the slices' sums in slice order");
                k.Line("if ((flags & 2) != 0 && global::ILGPU.Group.IdxY == 0 && j < cols) db[j] += sum;");
            }
            k.Close();
            k.Line();

            return new ChainKernel
            {
                Unit = u, Name = name, Kernels = k.ToString(), Grouped = bias, Condition = onlyBias ? trains : null, Parameters = System.Math.Max(fParams.Count, bParams.Count),
                ForwardTypes = string.Join(", ", fParams.Select(p => p.Substring(0, p.LastIndexOf(' ')))),
                BackwardTypes = string.Join(", ", bParams.Select(p => p.Substring(0, p.LastIndexOf(' ')))),
                ForwardArgs = string.Join(", ", fArgs), BackwardArgs = string.Join(", ", bArgs),
            };
        }
    }
}
