using System;
using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Spec → C# source (a pure function). The plan's ops are grouped into units: a primary op (conv, linear, pool,
    /// norm, add, softmax…) followed by a fused chain of elementwise stages (the layer's bias, activations, dropout)
    /// emitted as one Vector512 loop. Backward walks the same units in reverse.
    /// </summary>
    internal static class NetworkEmitter
    {
        private const string R = "global::Compiled.Nets.";
        private const string K = "global::Compiled.Nets.Kernels.";
        private const string V = "global::System.Runtime.Intrinsics.Vector512";
        private const string MM = "global::System.Runtime.InteropServices.MemoryMarshal";
        private const string US = "global::System.Runtime.CompilerServices.Unsafe";
        private const string E = "global::Compiled.Nets.Kernels.Elementwise";

        public static string HintName(NetworkSpec s) => HintName(s.Namespace, s.ContainingTypes, s.TypeName);

        internal static string HintName(string ns, EquatableArray<string> containingTypes, string typeName) => (ns.Length > 0 ? ns + "." : "") +
            string.Concat(containingTypes.Select(t => t.Split(' ').Last() + ".")) + typeName + ".g.cs";

        /// <summary>The runtime interface a network implements, from its input kind, sequence dimension and loss.</summary>
        internal static string InterfaceName(bool tokens, bool sequence, LossKind loss) => sequence
            ? (tokens && loss == LossKind.CrossEntropy ? R + "ISequenceClassifier" : R + "ISequenceNetwork")
            : tokens
            ? (loss == LossKind.CrossEntropy ? R + "ITokenClassifier" : R + "INetwork")
            : loss switch { LossKind.CrossEntropy => R + "IClassifier", LossKind.Mse => R + "IRegressor", _ => R + "IFloatNetwork" };

        // ------------------------------------------------------------------ plan analysis

        private enum StageKind { Bias, Relu, Gelu, Tanh, Sigmoid, Dropout }

        private sealed class Stage
        {
            public StageKind Kind;
            public int Value;     // the value this stage produces
            public double P;      // dropout probability
        }

        private sealed class Unit
        {
            public OpSpec? Primary;   // null: a chain over an existing value
            public int Source;        // the value the chain reads (the primary's value, or an existing one)
            public readonly List<Stage> Stages = new();
            public int Last => Stages.Count > 0 ? Stages[Stages.Count - 1].Value : Source;
            public int LastIndex;     // position in the op list of the last member (backward order)
        }

        private sealed class Plan
        {
            public NetworkSpec Spec = null!;
            public List<Unit> Units = new();
            public Dictionary<int, int> Alias = new();         // Flatten/Input: value → storage value
            public List<(string Name, string PerSample, long Max)> Regions = new(); // act-arena regions: per-sample floats (an expression of T) and the most at T = MaxSequence
            public Dictionary<string, string> RegionOffset = new();
            public List<(string Name, string PerSample)> IntRegions = new();
            public List<(string Name, int Size)> Stats = new();
            public HashSet<int> BiasRaw = new();
            public string OffsetTotal = "0";
            public Dictionary<string, string> GradOffset = new();     // gradient arena: only the values' gradients
            public string GradTotal = "0";
            public HashSet<int> OverwriteGrad = new();              // values whose gradient backward writes once instead of adding
            public HashSet<int> PoolRelu = new();                   // MaxPool2d ops whose unit is [ReLU]: one kernel call, no pooled-value region
            public Dictionary<int, OpSpec> ConvPool = new();        // 2×2/2 MaxPool2d op → the convolution it takes in (one kernel call)
            public Dictionary<int, OpSpec> PoolBias = new();        // MaxPool2d op → the convolution whose bias gradient its backward sums
            public List<ParamSpec> WrittenWeights = new();          // Linear weights applied once: their GEMM writes the gradient (beta = 0)
        }

        private static bool IsElementwise(OpKind k) => k is OpKind.Relu or OpKind.Gelu or OpKind.Tanh or OpKind.Sigmoid or OpKind.Dropout;

        private static int Prod(IEnumerable<int> d) => d.Aggregate(1, (a, b) => a * b);

        // Shapes may hold the symbolic sequence length T (-1, always first). Sizes are then emitted as expressions of
        // the local T, and the arena is laid out for T = MaxSequence so one workspace serves every length.
        private const int Seq = -1;
        private static bool HasSeq(IEnumerable<int> d) => d.Contains(Seq);
        private static string Dim(int d) => d == Seq ? "T" : I(d);

        /// <summary>The element count of a shape as emitted text: "768", "T * 768", "T".</summary>
        private static string Size(IEnumerable<int> dims)
        {
            var d = dims.ToList();
            int fixedPart = Prod(d.Where(x => x != Seq));
            if (!HasSeq(d)) return I(fixedPart);
            // One factor of T per symbolic dimension (attention probabilities are [H, T, T]).
            string ts = string.Join(" * ", d.Where(x => x == Seq).Select(_ => "T"));
            return fixedPart == 1 ? ts : $"{ts} * {I(fixedPart)}";
        }

        private static long MaxSize(NetworkSpec s, IEnumerable<int> dims) => dims.Aggregate(1L, (a, x) => a * (x == Seq ? s.MaxSequence : x));

        private static bool IsSequence(NetworkSpec s) => s.MaxSequence > 0;

        private static Plan Analyze(NetworkSpec s)
        {
            var plan = new Plan { Spec = s };
            var ops = s.Ops;
            var consumers = new int[ops.Count];
            foreach (var op in ops)
            {
                if (op.Input >= 0) consumers[op.Input]++;
                if (op.Input2 >= 0) consumers[op.Input2]++;
            }
            consumers[s.Output]++; // the network's output is used by the loss/caller

            var unitOfValue = new Dictionary<int, Unit>();
            foreach (var op in ops)
            {
                if (op.Kind == OpKind.Input) { plan.Alias[op.Id] = op.Id; continue; }
                if (op.Kind == OpKind.Flatten) { plan.Alias[op.Id] = Storage(plan, op.Input); continue; }
                if (IsElementwise(op.Kind))
                {
                    var stage = new Stage
                    {
                        Kind = op.Kind switch { OpKind.Relu => StageKind.Relu, OpKind.Gelu => StageKind.Gelu, OpKind.Tanh => StageKind.Tanh, OpKind.Sigmoid => StageKind.Sigmoid, _ => StageKind.Dropout },
                        Value = op.Id, P = op.Real,
                    };
                    // Join the chain that produced the input when nothing else reads that value.
                    if (unitOfValue.TryGetValue(op.Input, out var u) && u.Last == op.Input && consumers[op.Input] == 1)
                    {
                        u.Stages.Add(stage); u.LastIndex = op.Id; unitOfValue[op.Id] = u;
                    }
                    else
                    {
                        var nu = new Unit { Source = Storage(plan, op.Input), LastIndex = op.Id };
                        nu.Stages.Add(stage);
                        plan.Units.Add(nu); unitOfValue[op.Id] = nu;
                    }
                    continue;
                }
                var unit = new Unit { Primary = op, Source = op.Id, LastIndex = op.Id };
                if ((op.Kind == OpKind.Conv2d || op.Kind == OpKind.Linear) && s.Layers[op.Layer].Bias)
                {
                    unit.Stages.Add(new Stage { Kind = StageKind.Bias, Value = op.Id });
                    // A convolution adds its bias while laying its output out (no raw copy); a Linear's bias joins the fused loop.
                    if (op.Kind == OpKind.Linear) plan.BiasRaw.Add(op.Id);
                }
                plan.Units.Add(unit); unitOfValue[op.Id] = unit;
            }

            // A max-pool followed only by ReLU runs as one kernel (ReLU commutes with max): its pre-ReLU value never exists.
            foreach (var u in plan.Units)
                if (u.Primary is { Kind: OpKind.MaxPool2d } pool && u.Stages.Count == 1 && u.Stages[0].Kind == StageKind.Relu) plan.PoolRelu.Add(pool.Id);

            // A 2×2, stride-2 max-pool that alone reads a convolution's output (its bias at most in between) takes the
            // convolution in: on the Winograd path the kernel pools each output tile as it forms it, so the convolution's
            // output is written only when the kernel falls back to the two passes. Backward is unchanged: it needs the
            // pool's argmax and the convolution's input, never the convolution's output.
            foreach (var u in plan.Units)
                if (u.Primary is { Kind: OpKind.MaxPool2d } pool && pool.Ints[0] == 2 && pool.Ints[1] == 2 && pool.Ints[2] == 0
                    && unitOfValue.TryGetValue(pool.Input, out var cu) && cu.Primary is { Kind: OpKind.Conv2d } conv && conv.Id == pool.Input
                    && consumers[conv.Id] == 1 && cu.Stages.All(st => st.Kind == StageKind.Bias))
                    plan.ConvPool[pool.Id] = conv;

            // Workspace regions (per-sample sizes; the arena holds capacity × each).
            foreach (var op in ops)
            {
                if (op.Kind == OpKind.Input || op.Kind == OpKind.Flatten) continue;
                if (plan.PoolRelu.Contains(op.Id)) { plan.IntRegions.Add(($"a{op.Id}", Size(op.OutShape))); continue; }
                string size = Size(op.OutShape);
                long max = MaxSize(s, op.OutShape);
                plan.Regions.Add(($"v{op.Id}", size, max));
                if (plan.BiasRaw.Contains(op.Id)) plan.Regions.Add(($"r{op.Id}", size, max));
                if (op.Kind == OpKind.Dropout) plan.Regions.Add(($"m{op.Id}", size, max));
                if (op.Kind == OpKind.MaxPool2d) plan.IntRegions.Add(($"a{op.Id}", size));
                if (op.Kind == OpKind.LayerNorm)
                {
                    var lead = op.OutShape.Take(op.OutShape.Count - 1).ToList();
                    plan.Regions.Add(($"mean{op.Id}", Size(lead), MaxSize(s, lead))); plan.Regions.Add(($"rstd{op.Id}", Size(lead), MaxSize(s, lead)));
                }
                if (op.Kind == OpKind.BatchNorm2d) { plan.Stats.Add(($"sm{op.Id}", op.OutShape[0])); plan.Stats.Add(($"si{op.Id}", op.OutShape[0])); }
                if (op.Kind == OpKind.SelfAttention)
                {
                    // Projections, their gradients (transient in backward) and the [H, T, T] probabilities (+ dropout mask).
                    foreach (var part in new[] { "aq", "ak", "av" }) plan.Regions.Add(($"{part}{op.Id}", size, max));
                    var probs = new[] { s.Layers[op.Layer].Ints[1], op.InShape[0], op.InShape[0] };
                    plan.Regions.Add(($"p{op.Id}", Size(probs), MaxSize(s, probs)));
                    if (s.Layers[op.Layer].Real > 0) plan.Regions.Add(($"dm{op.Id}", Size(probs), MaxSize(s, probs)));
                }
            }
            // Attention's projection gradients live only inside one op's backward: all attention ops share one region of
            // each (bert-base: 12 layers × 3 × T·768 floats per sample saved), sized for the widest.
            if (ops.Where(o => o.Kind == OpKind.SelfAttention).OrderByDescending(o => MaxSize(s, o.OutShape)).FirstOrDefault() is { } widest)
                foreach (var part in new[] { "gq", "gk", "gv" }) plan.Regions.Add((part, Size(widest.OutShape), MaxSize(s, widest.OutShape)));
            if (s.Loss == LossKind.CrossEntropy) plan.Regions.Add(("probs", Size(ops[s.Output].OutShape), MaxSize(s, ops[s.Output].OutShape)));
            plan.WrittenWeights = ops.Where(op => op.Kind == OpKind.Linear && ops.Count(o => o.Layer == op.Layer) == 1).Select(op => Param(s, op, "weight")).ToList();
            long offset = 0;
            foreach (var (name, _, max) in plan.Regions) { plan.RegionOffset[name] = I(offset); offset += max; }
            plan.OffsetTotal = I(offset);
            long goffset = 0;
            foreach (var (name, _, max) in plan.Regions.Where(r => r.Name.StartsWith("v", StringComparison.Ordinal)))
            {
                plan.GradOffset[name] = I(goffset); goffset += max;
            }
            plan.GradTotal = I(goffset);
            plan.Units.Sort((a, b) => a.Primary?.Id.CompareTo(b.Primary?.Id ?? int.MaxValue) ?? 0);
            plan.Units = plan.Units.OrderBy(u => u.Primary?.Id ?? ops[u.Stages[0].Value].Id).ToList();
            return plan;
        }

        private static int Storage(Plan p, int value) => p.Alias.TryGetValue(value, out int v) ? v : value;

        // ------------------------------------------------------------------ emission

        public static string Emit(NetworkSpec s)
        {
            var plan = Analyze(s);
            var w = new SourceWriter();
            w.Line("// <auto-generated/>");
            w.Line("// Generated by Compiled.Nets from the [Network] declaration. Shapes are per sample; B is the batch.");
            w.Line("#nullable enable");
            w.Line("#pragma warning disable CS1591 // generated members document themselves through the user's declaration");
            w.Line();
            if (s.Namespace.Length > 0) w.Open($"namespace {s.Namespace}");
            foreach (var t in s.ContainingTypes) w.Open(t);

            string iface = InterfaceName(s.TokenInput, IsSequence(s), s.Loss);
            w.Line($"[global::System.CodeDom.Compiler.GeneratedCode(\"Compiled.Nets.Generator\", \"1.0\")]");
            w.Open($"{s.TypeModifiers} partial class {s.TypeName} : {iface}, {R}ILayer, global::System.IDisposable".TrimStart());

            EmitPlanComment(w, s);
            EmitMembers(w, s, plan);
            EmitForward(w, s, plan);
            OnnxEmitter.Emit(w, s);
            if (s.Loss != LossKind.None) { EmitTrainStep(w, s, plan); EmitEvaluate(w, s, plan); }
            EmitWorkspace(w, s, plan);

            w.Close();
            foreach (var _ in s.ContainingTypes) w.Close();
            if (s.Namespace.Length > 0) w.Close();
            return w.ToString();
        }

        /// <summary>The element type of the input span: token ids or floats.</summary>
        private static string InputElement(NetworkSpec s) => InputElement(s.TokenInput);
        internal static string InputElement(bool tokens) => tokens ? "int" : "float";

        private static string ShapeText(IEnumerable<int> d) => "[B" + string.Concat(d.Select(x => ", " + Dim(x))) + "]";

        /// <summary>The batch parameters of every public method: "int batch", or with a sequence dimension the
        /// attention mask ([batch, T] of 0/1, empty = all positions valid), the batch and the sequence length.</summary>
        private static string BatchParams(NetworkSpec s) => BatchParams(IsSequence(s));
        internal static string BatchParams(bool sequence) => sequence ? "global::System.ReadOnlySpan<int> mask, int batch, int sequence" : "int batch";
        private static string BatchArgs(NetworkSpec s) => IsSequence(s) ? "mask, batch, sequence" : "batch";

        private static void EmitPlanComment(SourceWriter w, NetworkSpec s)
        {
            w.Line("// Plan:");
            foreach (var op in s.Ops)
            {
                string src = op.Input < 0 ? "" : op.Input2 >= 0 ? $"(v{op.Input}, v{op.Input2})" : $"(v{op.Input})";
                w.Line($"//   v{op.Id} = {op.Kind}{src} {ShapeText(op.OutShape)}{(op.Kind == OpKind.Input ? "" : "  " + op.Label)}");
            }
            w.Line();
        }

        private static void EmitMembers(SourceWriter w, NetworkSpec s, Plan plan)
        {
            var outShape = s.Ops[s.Output].OutShape;
            long inSize = MaxSize(s, s.InputShape), outSize = MaxSize(s, outShape);
            static string AtMax(IEnumerable<int> shape) => HasSeq(shape) ? " (at T = MaxSequence)" : "";
            string elems = s.TokenInput ? "Token ids" : "Floats";
            w.Line($"/// <summary>{elems} per input sample: {string.Join("×", s.InputShape.Select(Dim))}{AtMax(s.InputShape)}.</summary>");
            w.Line($"public const int InputFeatures = {inSize};");
            w.Line($"/// <summary>Floats per output sample: {string.Join("×", outShape.Select(Dim))}{AtMax(outShape)}.</summary>");
            w.Line($"public const int OutputFeatures = {outSize};");
            if (IsSequence(s))
            {
                w.Line("/// <summary>The largest sequence length T the network accepts (the workspace is laid out for it).</summary>");
                w.Line($"public const int MaxSequence = {s.MaxSequence};");
            }
            w.Line($"private static readonly int[] s_inputShape = new int[] {{ {string.Join(", ", s.InputShape.Select(d => d == Seq ? s.MaxSequence : d))} }};");
            w.Line($"private static readonly int[] s_outputShape = new int[] {{ {string.Join(", ", outShape.Select(d => d == Seq ? s.MaxSequence : d))} }};");
            w.Line($"private const int DefaultCapacity = {s.MaxBatch};");
            w.Line();
            w.Line($"private readonly {R}ParameterStore _store;");
            w.Line("private readonly bool _ownsStore;");
            w.Line($"private readonly {R}Rng _rng;");
            foreach (var p in s.Parameters) w.Line($"private {R}ParameterInfo {p.Field} = null!;");
            if (plan.WrittenWeights.Count > 0) w.Line($"private {R}ParameterInfo[] _writtenGrads = null!; // gradients TrainStep overwrites instead of clearing and adding");
            foreach (var l in s.Layers.Where(l => l.IsRootProperty)) w.Line($"private {LayerType(l)} {l.FieldName} = null!;");
            var convs = s.Ops.Where(o => o.Kind == OpKind.Conv2d).ToList();
            if (convs.Count > 0)
            {
                w.Line("// Each convolution's Winograd-transformed weights, reused while the weights are unchanged (checked on every call).");
                foreach (var o in convs) w.Line($"private readonly {K}Conv2dWeightCache {WeightCache(o)} = new();");
            }
            w.Line();

            w.Line("/// <summary>Declares every tensor of this network (PyTorch state-dict names, shapes, default initialisation).</summary>");
            w.Open($"public static void DeclareParameters({R}ParameterStoreBuilder b, string prefix)");
            foreach (var p in s.Parameters)
            {
                string shape = p.Shape.Count == 0 ? "global::System.Array.Empty<int>()" : $"new int[] {{ {string.Join(", ", p.Shape)} }}";
                w.Line($"b.{(p.IsBuffer ? "AddBuffer" : "Add")}(prefix + \"{p.Name}\", {shape}, {R}ParameterRole.{p.Role}, {R}ParameterInit.{p.Init});");
            }
            w.Close();
            w.Line();
            w.Line("/// <summary>Creates the network with its own parameters, initialised as PyTorch does from <paramref name=\"seed\"/>.</summary>");
            w.Open($"public {s.TypeName}(ulong seed = 0)");
            w.Line($"var b = new {R}ParameterStoreBuilder();");
            w.Line("DeclareParameters(b, \"\");");
            w.Line("_store = b.Build();");
            w.Line("_store.Initialize(seed);");
            w.Line("_ownsStore = true;");
            w.Line($"_rng = new {R}Rng(seed ^ 0x9E3779B97F4A7C15UL);");
            w.Line("Bind(\"\");");
            w.Close();
            w.Line();
            w.Line("/// <summary>Binds to tensors of an existing store under <paramref name=\"prefix\"/> (composition, checkpoints).</summary>");
            w.Open($"public {s.TypeName}({R}ParameterStore store, string prefix)");
            w.Line("_store = store;");
            w.Line($"_rng = new {R}Rng(0x9E3779B97F4A7C15UL);");
            w.Line("Bind(prefix);");
            w.Close();
            w.Line();
            w.Open("private void Bind(string prefix)");
            foreach (var p in s.Parameters) w.Line($"{p.Field} = _store[prefix + \"{p.Name}\"];");
            if (plan.WrittenWeights.Count > 0) w.Line($"_writtenGrads = new[] {{ {string.Join(", ", plan.WrittenWeights.Select(p => p.Field))} }};");
            foreach (var l in s.Layers.Where(l => l.IsRootProperty)) w.Line($"{l.FieldName} = {LayerConstruction(l)};");
            w.Close();
            w.Line();
            foreach (var l in s.Layers.Where(l => l.IsRootProperty))
                w.Line($"{l.Modifiers} {LayerType(l)} {l.Property} {{ get => {l.FieldName}; }}");
            w.Line();
            w.Line($"public string Name => \"{s.TypeName}\";");
            w.Line("public global::System.Collections.Generic.IReadOnlyList<int> InputShape => s_inputShape;");
            w.Line("public int InputSize => InputFeatures;");
            w.Line("public global::System.Collections.Generic.IReadOnlyList<int> OutputShape => s_outputShape;");
            w.Line("public int OutputSize => OutputFeatures;");
            w.Line($"public {R}ParameterStore Parameters => _store;");
            w.Line();
            w.Line("/// <summary>Runs the user's Forward eagerly on tensors: the slow reference path.</summary>");
            w.Line($"public {R}Tensor ForwardEager({R}Tensor x) => Forward(x);");
            w.Line($"{R}Tensor {R}ILayer.Forward({R}Tensor x) => Forward(x);");
            if (IsSequence(s)) w.Line("int " + R + "ISequenceNetwork.MaxSequence => MaxSequence;");
            w.Line();
            if (IsSequence(s)) { EmitSequenceCheck(w, s); return; }
            w.Open($"private static void CheckInput(global::System.ReadOnlySpan<{InputElement(s)}> input, int batch, int output, string method)");
            w.Line($"if (batch <= 0) throw new global::System.ArgumentOutOfRangeException(nameof(batch), batch, \"{s.TypeName}.\" + method + \": batch must be positive.\");");
            w.Line($"if (input.Length != batch * InputFeatures) throw new global::System.ArgumentException(\"{s.TypeName}.\" + method + \": input has \" + input.Length + \" floats, but batch \" + batch + \" × [{string.Join(", ", s.InputShape)}] needs \" + (batch * InputFeatures) + \".\", nameof(input));");
            w.Line($"if (output >= 0 && output != batch * OutputFeatures) throw new global::System.ArgumentException(\"{s.TypeName}.\" + method + \": the output span has \" + output + \" floats, but batch \" + batch + \" × [{string.Join(", ", s.Ops[s.Output].OutShape)}] needs \" + (batch * OutputFeatures) + \".\", nameof(output));");
            w.Close();
            w.Line();
        }

        private static void EmitSequenceCheck(SourceWriter w, NetworkSpec s)
        {
            var outShape = s.Ops[s.Output].OutShape;
            string n = s.TypeName;
            w.Open($"private static void CheckInput(global::System.ReadOnlySpan<{InputElement(s)}> input, global::System.ReadOnlySpan<int> mask, int batch, int T, int output, string method)");
            w.Line($"if (batch <= 0) throw new global::System.ArgumentOutOfRangeException(nameof(batch), batch, \"{n}.\" + method + \": batch must be positive.\");");
            w.Line($"if (T <= 0 || T > MaxSequence) throw new global::System.ArgumentOutOfRangeException(\"sequence\", T, \"{n}.\" + method + \": the sequence length must be in [1, {s.MaxSequence}] (MaxSequence).\");");
            w.Line($"if (input.Length != batch * {Size(s.InputShape)}) throw new global::System.ArgumentException(\"{n}.\" + method + \": input has \" + input.Length + \" values, but batch \" + batch + \" × [\" + T + \"{string.Concat(s.InputShape.Skip(1).Select(d => ", " + I(d)))}] needs \" + (batch * {Size(s.InputShape)}) + \".\", nameof(input));");
            w.Line($"if (!mask.IsEmpty && mask.Length != batch * T) throw new global::System.ArgumentException(\"{n}.\" + method + \": the mask has \" + mask.Length + \" values, but batch \" + batch + \" × sequence \" + T + \" needs \" + (batch * T) + \".\", nameof(mask));");
            w.Line($"{K}SequenceKernels.CheckMask(mask, batch, T, \"{n}\", method);");
            w.Line($"if (output >= 0 && output != batch * {Size(outShape)}) throw new global::System.ArgumentException(\"{n}.\" + method + \": the output span has \" + output + \" floats, but batch \" + batch + \" × [{string.Join(", ", outShape.Select(Dim))}] needs \" + (batch * {Size(outShape)}) + \".\", nameof(output));");
            w.Close();
            w.Line();
        }

        private static string LayerType(LayerSpec l) => l.Kind switch
        {
            LayerKind.SubNetwork => l.Ints[0] > 1 ? l.SubType + "[]" : l.SubType,
            _ => R + l.Kind,
        };

        private static string LayerConstruction(LayerSpec l)
        {
            var i = l.Ints;
            string name = $"prefix + \"{l.StateName}\"";
            string b = l.Bias ? "true" : "false";
            return l.Kind switch
            {
                LayerKind.SubNetwork when i[0] > 1 => $"new {l.SubType}[] {{ {string.Join(", ", Enumerable.Range(0, i[0]).Select(c => $"new {l.SubType}(_store, prefix + \"{l.StateName}.{c}.\")"))} }}",
                LayerKind.SubNetwork => $"new {l.SubType}(_store, prefix + \"{l.StateName}.\")",
                LayerKind.Conv2d => $"new {R}Conv2d(_store, {name}, {i[0]}, {i[1]}, {i[2]}, {i[3]}, {i[4]}, {i[5]}, {b})",
                LayerKind.Linear => $"new {R}Linear(_store, {name}, {i[0]}, {i[1]}, {b})",
                LayerKind.MaxPool2d => $"new {R}MaxPool2d({i[0]}, {i[1]}, {i[2]})",
                LayerKind.AvgPool2d => $"new {R}AvgPool2d({i[0]}, {i[1]}, {i[2]})",
                LayerKind.BatchNorm2d => $"new {R}BatchNorm2d(_store, {name}, {i[0]}, {F(l.Real)}, {F(l.Real2)})",
                LayerKind.LayerNorm => $"new {R}LayerNorm(_store, {name}, {i[0]}, {F(l.Real)})",
                LayerKind.Embedding => $"new {R}Embedding(_store, {name}, {i[0]}, {i[1]})",
                LayerKind.SelfAttention => $"new {R}SelfAttention(_store, {name}, {i[0]}, {i[1]}, {F(l.Real)})",
                LayerKind.PositionEmbedding => $"new {R}PositionEmbedding(_store, {name}, {i[0]}, {i[1]})",
                LayerKind.TokenTypeEmbedding => $"new {R}TokenTypeEmbedding(_store, {name}, {i[0]}, {i[1]})",
                LayerKind.Dropout => $"new {R}Dropout({l.Real.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})",
                _ => $"new {R}{l.Kind}()",
            };
        }

        // ------------------------------------------------------------------ spans

        private static void EmitSpans(SourceWriter w, NetworkSpec s, Plan plan, bool grads)
        {
            w.Line("global::System.Span<float> act = ws.Act.Span;");
            if (grads) w.Line("global::System.Span<float> grad = ws.Grad.Span;");
            w.Line("int cap = ws.Capacity;");
            foreach (var (name, per, _) in plan.Regions)
            {
                w.Line($"var {name} = act.Slice({plan.RegionOffset[name]} * cap, {per} * batch);");
                if (grads && name.StartsWith("v", StringComparison.Ordinal))
                    w.Line($"var g{name.Substring(1)} = grad.Slice({plan.GradOffset[name]} * cap, {per} * batch);");
            }
            int ioff = 0;
            foreach (var (name, per) in plan.IntRegions) { w.Line($"var {name} = new global::System.Span<int>(ws.Ints, {ioff} * cap, {per} * batch);"); ioff += int.Parse(per); }
            int soff = 0;
            foreach (var (name, size) in plan.Stats) { w.Line($"var {name} = ws.Stats.Span.Slice({soff}, {size});"); soff += size; }
            // Aliases: the input, and Flatten views.
            foreach (var kv in plan.Alias.OrderBy(k => k.Key))
            {
                if (kv.Key == kv.Value) { w.Line($"global::System.ReadOnlySpan<{InputElement(s)}> v{kv.Key} = input;"); continue; }
                w.Line($"var v{kv.Key} = v{kv.Value};");
                if (grads && s.Ops[kv.Value].Kind != OpKind.Input) w.Line($"var g{kv.Key} = g{kv.Value};");
            }
        }

        // Parameters are read through ReadValue (allowed while the store is read-only for inference); buffers (BatchNorm
        // statistics, which training updates) through Value.
        private static string P(ParamSpec p) => p.IsBuffer ? $"_store.Value({p.Field})" : $"_store.ReadValue({p.Field})";

        /// <summary>The field holding a convolution's cache of Winograd-transformed weights.</summary>
        private static string WeightCache(OpSpec op) => $"_weights{op.Id}";
        private static string PG(ParamSpec p) => $"({p.Field}.RequiresGrad ? _store.Gradient({p.Field}) : default)";

        private static ParamSpec Param(NetworkSpec s, OpSpec op, string suffix) =>
            s.Parameters.First(p => p.Name == s.Layers[op.Layer].StateName + "." + suffix);

        private static string Rows(OpSpec op) => $"batch * {Size(op.OutShape.Take(op.OutShape.Count - 1))}";

        private static string Conv2dGeo(NetworkSpec s, OpSpec op, string batch)
        {
            var i = s.Layers[op.Layer].Ints;
            var x = op.InShape;
            return $"new {K}Conv2dGeometry({batch}, {x[0]}, {x[1]}, {x[2]}, {i[1]}, {i[2]}, {i[2]}, {i[3]}, {i[3]}, {i[4]}, {i[4]}, {i[5]}, {i[5]})";
        }

        private static string PoolGeo(OpSpec op) =>
            $"new {K}Pool2dGeometry(batch, {op.InShape[0]}, {op.InShape[1]}, {op.InShape[2]}, {op.Ints[0]}, {op.Ints[0]}, {op.Ints[1]}, {op.Ints[1]}, {op.Ints[2]}, {op.Ints[2]})";

        // ------------------------------------------------------------------ forward

        private static void EmitForwardBody(SourceWriter w, NetworkSpec s, Plan plan, bool training)
        {
            foreach (var u in plan.Units)
            {
                if (u.Primary is { } pooled && plan.ConvPool.Values.Any(c => c.Id == pooled.Id)) continue; // runs inside the pool's call
                if (u.Primary is { } cp && plan.ConvPool.TryGetValue(cp.Id, out var conv))
                {
                    bool relu = plan.PoolRelu.Contains(cp.Id);
                    string pooledOut = relu ? $"v{u.Last}" : $"v{cp.Id}";
                    string bias = s.Layers[conv.Layer].Bias ? P(Param(s, conv, "bias")) : "default";
                    w.Line($"// {conv.Label} + {cp.Label}{(relu ? " + ReLU" : "")}: {ShapeText(conv.InShape)} -> {ShapeText(cp.OutShape)} (one kernel; {ShapeText(conv.OutShape)} is only its fallback buffer)");
                    w.Line($"{K}Conv2dKernels.ForwardMaxPool2x2({pooledOut}, {(training ? $"a{cp.Id}" : "default")}, v{Storage(plan, conv.Input)}, {P(Param(s, conv, "weight"))}, {bias}, {Conv2dGeo(s, conv, "batch")}, ws.Scratch.Span, {WeightCache(conv)}, v{conv.Id}, relu: {(relu ? "true" : "false")});");
                    if (!relu && u.Stages.Count > 0) EmitChainForward(w, s, plan, u, training);
                    continue;
                }
                if (u.Primary is { } pool && plan.PoolRelu.Contains(pool.Id))
                {
                    w.Line($"// {pool.Label} + ReLU: {ShapeText(pool.InShape)} -> {ShapeText(pool.OutShape)} (one kernel)");
                    w.Line($"{K}PoolingKernels.MaxPool2dForward(v{u.Last}, {(training ? $"a{pool.Id}" : "default")}, v{Storage(plan, pool.Input)}, {PoolGeo(pool)}, relu: true);");
                    continue;
                }
                if (u.Primary is { } op) EmitPrimaryForward(w, s, plan, op, training);
                var chain = u;
                if (u.Primary is { Kind: OpKind.Conv2d } && u.Stages.Count > 0 && u.Stages[0].Kind == StageKind.Bias)
                {
                    // The convolution kernel already added the bias; the rest of the chain starts from its output.
                    chain = new Unit { Primary = u.Primary, Source = u.Source, LastIndex = u.LastIndex };
                    chain.Stages.AddRange(u.Stages.Skip(1));
                }
                if (chain.Stages.Count > 0) EmitChainForward(w, s, plan, chain, training);
            }
        }

        private static void EmitPrimaryForward(SourceWriter w, NetworkSpec s, Plan plan, OpSpec op, bool training)
        {
            string x = $"v{Storage(plan, op.Input)}";
            string y = plan.BiasRaw.Contains(op.Id) ? $"r{op.Id}" : $"v{op.Id}";
            w.Line($"// {op.Label}: {ShapeText(op.InShape)} -> {ShapeText(op.OutShape)}");
            switch (op.Kind)
            {
                case OpKind.Conv2d:
                    w.Line(s.Layers[op.Layer].Bias
                        ? $"{K}Conv2dKernels.Forward({y}, {x}, {P(Param(s, op, "weight"))}, {P(Param(s, op, "bias"))}, {Conv2dGeo(s, op, "batch")}, ws.Scratch.Span, {WeightCache(op)}); // bias added in the kernel's output pass"
                        : $"{K}Conv2dKernels.Forward({y}, {x}, {P(Param(s, op, "weight"))}, default, {Conv2dGeo(s, op, "batch")}, ws.Scratch.Span, {WeightCache(op)});");
                    break;
                case OpKind.Linear:
                {
                    var i = s.Layers[op.Layer].Ints;
                    // Inference also offers the weights' bfloat16 copy (empty unless the store is read-only for bfloat16).
                    var weight = Param(s, op, "weight");
                    w.Line(training
                        ? $"{K}LinearKernels.Forward({y}, {x}, {P(weight)}, {Rows(op)}, {i[0]}, {i[1]});"
                        : $"{K}LinearKernels.Forward({y}, {x}, {P(weight)}, _store.BFloat16Value({weight.Field}), {Rows(op)}, {i[0]}, {i[1]});");
                    break;
                }
                case OpKind.MaxPool2d:
                    w.Line($"{K}PoolingKernels.MaxPool2dForward({y}, {(training ? $"a{op.Id}" : "default")}, {x}, {PoolGeo(op)});");
                    break;
                case OpKind.AvgPool2d:
                    w.Line($"{K}PoolingKernels.AvgPool2dForward({y}, {x}, {PoolGeo(op)});");
                    break;
                case OpKind.BatchNorm2d:
                {
                    var l = s.Layers[op.Layer];
                    string c = I(op.InShape[0]), hw = I(op.InShape[1] * op.InShape[2]);
                    if (training)
                    {
                        w.Line($"{K}BatchNormKernels.ForwardTraining({y}, sm{op.Id}, si{op.Id}, {P(Param(s, op, "running_mean"))}, {P(Param(s, op, "running_var"))}, {x}, {P(Param(s, op, "weight"))}, {P(Param(s, op, "bias"))}, batch, {c}, {hw}, {F(l.Real)}, {F(l.Real2)});");
                        w.Line($"{P(Param(s, op, "num_batches_tracked"))}[0] += 1f;");
                    }
                    else
                        w.Line($"{K}BatchNormKernels.ForwardInference({y}, {x}, {P(Param(s, op, "weight"))}, {P(Param(s, op, "bias"))}, {P(Param(s, op, "running_mean"))}, {P(Param(s, op, "running_var"))}, batch, {c}, {hw}, {F(l.Real)});");
                    break;
                }
                case OpKind.LayerNorm:
                {
                    var l = s.Layers[op.Layer];
                    w.Line($"{K}LayerNormKernels.Forward({y}, {(training ? $"mean{op.Id}" : "default")}, {(training ? $"rstd{op.Id}" : "default")}, {x}, {P(Param(s, op, "weight"))}, {P(Param(s, op, "bias"))}, {Rows(op)}, {l.Ints[0]}, {F(l.Real)});");
                    break;
                }
                case OpKind.Softmax:
                    w.Line($"{K}SoftmaxKernels.Forward({y}, {x}, {Rows(op)}, {Dim(op.OutShape[op.OutShape.Count - 1])});");
                    break;
                case OpKind.Add:
                    w.Line($"{E}.Add({y}, {x}, v{Storage(plan, op.Input2)});");
                    break;
                case OpKind.Embedding:
                {
                    var i = s.Layers[op.Layer].Ints;
                    w.Line($"{K}EmbeddingKernels.Forward({y}, {x}, {P(Param(s, op, "weight"))}, batch * {Size(op.InShape)}, {i[0]}, {i[1]});");
                    break;
                }
                case OpKind.SelectToken:
                    w.Line($"{K}SequenceKernels.SelectForward({y}, {x}, batch, T, {Size(op.OutShape)}, {op.Ints[0]});");
                    break;
                case OpKind.AddPositions:
                    w.Line($"{K}EmbeddingKernels.AddPositions({y}, {x}, {P(Param(s, op, "weight"))}, batch, {Dim(op.InShape[0])}, {s.Layers[op.Layer].Ints[1]});");
                    break;
                case OpKind.AddTokenType:
                {
                    int dim = s.Layers[op.Layer].Ints[1];
                    w.Line($"{E}.AddToEachRow({y}, {x}, {P(Param(s, op, "weight"))}, {Rows(op)}, {dim}); // token type 0 everywhere");
                    break;
                }
                case OpKind.SelfAttention:
                {
                    var l = s.Layers[op.Layer];
                    int e = l.Ints[0], heads = l.Ints[1];
                    foreach (var (part, name) in new[] { ("aq", "query"), ("ak", "key"), ("av", "value") })
                        w.Line($"{K}LinearKernels.ForwardBias({part}{op.Id}, {x}, {P(Param(s, op, name + ".weight"))}, {P(Param(s, op, name + ".bias"))}, {Rows(op)}, {e}, {e});");
                    bool drop = training && l.Real > 0;
                    if (drop) w.Line($"{K}DropoutKernels.FillMask(dm{op.Id}, {F(l.Real)}, _rng);");
                    w.Line($"{K}AttentionKernels.Forward({y}, p{op.Id}, aq{op.Id}, ak{op.Id}, av{op.Id}, {(IsSequence(s) ? "mask" : "default")}, {(drop ? $"dm{op.Id}" : "default")}, batch, {Dim(op.InShape[0])}, {heads}, {e / heads}, ws.Scratch.Span);");
                    break;
                }
                case OpKind.MeanOverSequence:
                    w.Line($"{K}SequenceKernels.MeanForward({y}, {x}, mask, batch, T, {Size(op.OutShape)});");
                    break;
                default:
                    throw new InvalidOperationException("Unexpected primary op " + op.Kind);
            }
        }

        /// <summary>Loop geometry of a chain: rows × cols, and how the bias (if any) is indexed.</summary>
        private static (string Rows, string Cols, int BiasChannels, bool ColumnBias) ChainShape(NetworkSpec s, Unit u)
        {
            var shape = s.Ops[u.Source].OutShape;
            if (u.Primary is { } op && u.Stages.Count > 0 && u.Stages[0].Kind == StageKind.Bias)
            {
                if (op.Kind == OpKind.Conv2d) return ($"batch * {shape[0]}", I(shape[1] * shape[2]), shape[0], false);
                return (Rows(op), Dim(shape[shape.Count - 1]), 0, true);
            }
            return ("batch", Size(shape), 0, false);
        }

        private static bool Stored(Unit u, int j, bool training)
        {
            if (j == u.Stages.Count - 1) return true;
            if (!training) return false;
            var k = u.Stages[j].Kind;
            return k is StageKind.Relu or StageKind.Tanh or StageKind.Sigmoid || u.Stages[j + 1].Kind == StageKind.Gelu;
        }

        private static string StageForward(Stage st, string t, bool vector, bool training, string i, string j, string biasScalar)
        {
            switch (st.Kind)
            {
                case StageKind.Bias: return vector ? $"{t} += bv;" : $"{t} += {biasScalar};";
                case StageKind.Relu: return $"{t} = {E}.Relu({t});";
                case StageKind.Gelu: return $"{t} = {E}.Gelu({t});";
                case StageKind.Tanh: return $"{t} = {E}.Tanh({t});";
                case StageKind.Sigmoid: return $"{t} = {E}.Sigmoid({t});";
                default:
                    if (!training) return $"// v{st.Value}: dropout is the identity in evaluation mode";
                    return vector ? $"{t} *= {V}.LoadUnsafe(ref m{st.Value}_, (nuint){i});" : $"{t} *= {US}.Add(ref m{st.Value}_, {i});";
            }
        }

        private static void EmitChainForward(SourceWriter w, NetworkSpec s, Plan plan, Unit u, bool training)
        {
            var (rows, cols, channels, colBias) = ChainShape(s, u);
            bool bias = u.Stages[0].Kind == StageKind.Bias;
            string src = bias ? $"r{u.Source}" : $"v{Storage(plan, u.Source)}";
            w.Line($"// fused: {string.Join(" + ", u.Stages.Select(st => st.Kind.ToString()))}  {ShapeText(s.Ops[u.Last].OutShape)}");
            w.Open();
            if (training)
                foreach (var st in u.Stages.Where(st => st.Kind == StageKind.Dropout))
                    w.Line($"{K}DropoutKernels.FillMask(m{st.Value}, {F(st.P)}, _rng);");
            w.Line($"int rows = {rows}, cols = {cols};");
            w.Line($"ref float src_ = ref {MM}.GetReference({src});");
            for (int j = 0; j < u.Stages.Count; j++)
                if (Stored(u, j, training)) w.Line($"ref float v{u.Stages[j].Value}_ = ref {MM}.GetReference(v{u.Stages[j].Value});");
            if (training)
                foreach (var st in u.Stages.Where(st => st.Kind == StageKind.Dropout)) w.Line($"ref float m{st.Value}_ = ref {MM}.GetReference(m{st.Value});");
            if (bias) w.Line($"global::System.ReadOnlySpan<float> bias = {P(Param(s, u.Primary!, "bias"))};");
            w.Open("for (int r = 0; r < rows; r++)");
            if (bias && !colBias) { w.Line($"float bs = bias[r % {channels}];"); w.Line($"var bv = {V}.Create(bs);"); }
            w.Line("int i = r * cols, end = i + cols, j = 0;");
            w.Open("for (; i <= end - 16; i += 16, j += 16)");
            w.Line($"var t = {V}.LoadUnsafe(ref src_, (nuint)i);");
            if (bias && colBias) w.Line($"var bv = {V}.LoadUnsafe(ref {MM}.GetReference(bias), (nuint)j);");
            for (int j = 0; j < u.Stages.Count; j++)
            {
                w.Line(StageForward(u.Stages[j], "t", true, training, "i", "j", ""));
                if (Stored(u, j, training)) w.Line($"{V}.StoreUnsafe(t, ref v{u.Stages[j].Value}_, (nuint)i);");
            }
            w.Close();
            w.Open("for (; i < end; i++, j++)");
            w.Line($"float t = {US}.Add(ref src_, i);");
            for (int j = 0; j < u.Stages.Count; j++)
            {
                w.Line(StageForward(u.Stages[j], "t", false, training, "i", "j", colBias ? "bias[j]" : "bs"));
                if (Stored(u, j, training)) w.Line($"{US}.Add(ref v{u.Stages[j].Value}_, i) = t;");
            }
            w.Close();
            w.Close();
            w.Close();
        }

        private static void EmitForward(SourceWriter w, NetworkSpec s, Plan plan)
        {
            w.Line("/// <summary>Compiled inference in evaluation mode (dropout off, BatchNorm running statistics).</summary>");
            w.Line("/// <remarks>Safe to call from many threads at once: each call works in a workspace of its own.</remarks>");
            w.Open($"public void Forward(global::System.ReadOnlySpan<{InputElement(s)}> input, {BatchParams(s)}, global::System.Span<float> output)");
            w.Line($"CheckInput(input, {BatchArgs(s)}, output.Length, \"Forward\");");
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"Forward\");");
            w.Line($"try {{ ForwardEval(ws, input, {BatchArgs(s)}).CopyTo(output); }}");
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
            w.Line("/// <summary>The evaluation-mode forward shared by Forward and EvaluateLoss; returns the output (workspace memory).</summary>");
            w.Open($"private global::System.ReadOnlySpan<float> ForwardEval(Workspace ws, global::System.ReadOnlySpan<{InputElement(s)}> input, {BatchParams(s)})");
            EmitSequenceLocal(w, s);
            EmitSpans(w, s, plan, grads: false);
            EmitForwardBody(w, s, plan, training: false);
            w.Line($"return v{Storage(plan, s.Output)};");
            w.Close();
            w.Line();
        }

        /// <summary>The loss-specific parts of TrainStep/EvaluateLoss: target parameter and output name.</summary>
        internal static (string Targets, string OutName) LossSignature(LossKind loss) => loss == LossKind.CrossEntropy
            ? ("global::System.ReadOnlySpan<int> labels", "logits")
            : ("global::System.ReadOnlySpan<float> targets", "output");

        private static void OpenLossMethod(SourceWriter w, NetworkSpec s, string name, string summary)
        {
            var (targets, outName) = LossSignature(s.Loss);
            w.Line($"/// <summary>{summary}</summary>");
            w.Open($"public float {name}(global::System.ReadOnlySpan<{InputElement(s)}> input, {targets}, {BatchParams(s)}, global::System.Span<float> {outName} = default)");
            w.Line($"CheckInput(input, {BatchArgs(s)}, {outName}.IsEmpty ? -1 : {outName}.Length, \"{name}\");");
            EmitSequenceLocal(w, s);
            EmitTargetCheck(w, s, s.Loss == LossKind.CrossEntropy);
        }

        // ------------------------------------------------------------------ training

        private static IEnumerable<ParamSpec> TrainableParams(NetworkSpec s, OpSpec op)
        {
            if (op.Layer < 0) return Enumerable.Empty<ParamSpec>();
            var l = s.Layers[op.Layer];
            // A layer's own tensors are "{state}.weight" etc.; self-attention's are "{state}.query.weight" and the like.
            bool Own(string rest) => rest.IndexOf('.') < 0
                || (l.Kind == LayerKind.SelfAttention && (rest.StartsWith("query.", StringComparison.Ordinal) || rest.StartsWith("key.", StringComparison.Ordinal) || rest.StartsWith("value.", StringComparison.Ordinal)) && rest.Split('.').Length == 2);
            return s.Parameters.Where(p => !p.IsBuffer && p.Name.StartsWith(l.StateName + ".", StringComparison.Ordinal) && Own(p.Name.Substring(l.StateName.Length + 1)));
        }

        private static void EmitNeeds(SourceWriter w, NetworkSpec s)
        {
            w.Line("// Which values need a gradient (something trainable lies upstream); frozen parameters cost nothing.");
            foreach (var op in s.Ops)
            {
                var terms = new List<string>();
                foreach (var p in TrainableParams(s, op)) terms.Add($"{p.Field}.RequiresGrad");
                if (op.Input >= 0) terms.Add($"n{op.Input}");
                if (op.Input2 >= 0) terms.Add($"n{op.Input2}");
                w.Line($"bool n{op.Id} = {(terms.Count == 0 ? "false" : string.Join(" || ", terms))};");
            }
        }

        private static void EmitTrainStep(SourceWriter w, NetworkSpec s, Plan plan)
        {
            bool ce = s.Loss == LossKind.CrossEntropy;
            string outSize = Size(s.Ops[s.Output].OutShape);
            var (targets, outName) = LossSignature(s.Loss);
            string targetName = ce ? "labels" : "targets";
            OpenLossMethod(w, s, "TrainStep", "Forward (training mode), mean loss, backward; gradients are zeroed first. Returns the loss. Needs the instance to itself (no concurrent call).");
            w.Line($"if (_store.IsReadOnly) throw new global::System.InvalidOperationException(\"{s.TypeName}.TrainStep: the parameters are read-only (MakeReadOnly, for serving), and a training step would change them and the BatchNorm statistics; call Parameters.MakeWritable() first.\");");
            w.Line("var ws = _workspaces.RentTraining(batch, InitialCapacity, \"TrainStep\");");
            w.Line($"try {{ return TrainStepIn(ws, input, {targetName}, {BatchArgs(s)}, {outName}); }}");
            w.Line("finally { _workspaces.ReturnTraining(ws); }");
            w.Close();
            w.Line();
            w.Open($"private float TrainStepIn(Workspace ws, global::System.ReadOnlySpan<{InputElement(s)}> input, {targets}, {BatchParams(s)}, global::System.Span<float> {outName})");
            EmitSequenceLocal(w, s);
            EmitSpans(w, s, plan, grads: true);
            w.Line(plan.WrittenWeights.Count > 0 ? "_store.ZeroGradientsExcept(_writtenGrads);" : "_store.ZeroGradients();");
            EmitNeeds(w, s);
            w.Line("// Gradients accumulate (+=): clear this batch's part of each one that backward will touch.");
            // Values inside a fused chain never see their gradient materialised, so only units' ends and inputs count.
            var touched = new HashSet<int>();
            foreach (var u in plan.Units)
            {
                touched.Add(Storage(plan, u.Last)); touched.Add(Storage(plan, u.Source));
                if (u.Primary is { } op)
                {
                    if (op.Input >= 0) touched.Add(Storage(plan, op.Input));
                    if (op.Input2 >= 0) touched.Add(Storage(plan, op.Input2));
                }
            }
            touched.Add(Storage(plan, s.Output));
            plan.OverwriteGrad = SingleWriterGradients(s, plan);
            // A max-pool whose backward alone writes a biased convolution's gradient also sums that gradient per channel
            // (the bias gradient) from the pooled gradients it routes: a quarter of the values, read while in cache,
            // instead of a second single-threaded pass over the whole convolution output's gradient.
            foreach (var u in plan.Units)
                if (u.Primary is { Kind: OpKind.MaxPool2d } mp && plan.Units.FirstOrDefault(c => c.Primary is { Kind: OpKind.Conv2d } cv && cv.Id == mp.Input) is { } cu
                    && cu.Stages.Count == 1 && cu.Stages[0].Kind == StageKind.Bias && plan.OverwriteGrad.Contains(mp.Input))
                    plan.PoolBias[mp.Id] = cu.Primary!;
            foreach (var (name, _, _) in plan.Regions.Where(r => r.Name.StartsWith("v", StringComparison.Ordinal)))
            {
                int id = int.Parse(name.Substring(1), System.Globalization.CultureInfo.InvariantCulture);
                if (touched.Contains(id) && s.Ops[id].Kind != OpKind.Input && !plan.OverwriteGrad.Contains(id)) w.Line($"if (n{id}) g{id}.Clear();");
            }
            if (plan.OverwriteGrad.Any(i => plan.RegionOffset.ContainsKey("v" + i)))
                w.Line($"// Written, not accumulated, by their only backward contribution (no clear needed): {string.Join(", ", plan.OverwriteGrad.Where(i => plan.RegionOffset.ContainsKey("v" + i)).OrderBy(i => i).Select(i => "g" + i))}.");
            w.Line();
            EmitForwardBody(w, s, plan, training: true);
            int o = Storage(plan, s.Output);
            w.Line();
            w.Line("// loss");
            if (ce)
            {
                w.Line($"float loss = {K}CrossEntropyKernels.Forward(probs, v{o}, labels, batch, {outSize}, {F(s.LabelSmoothing)});");
                w.Line($"{K}CrossEntropyKernels.Backward(g{o}, probs, labels, batch, {outSize}, 1f / batch, {F(s.LabelSmoothing)});");
            }
            else
            {
                w.Line($"float loss = {K}MseKernels.Forward(v{o}, targets, batch * {outSize});");
                w.Line($"{K}MseKernels.Backward(g{o}, v{o}, targets, batch * {outSize}, 1f / (batch * {outSize}));");
            }
            w.Line($"if (!{outName}.IsEmpty) v{o}.CopyTo({outName});");
            w.Line();
            w.Line("// backward: the units above in reverse order");
            foreach (var u in Enumerable.Reverse(plan.Units.OrderBy(u => u.LastIndex).ToList()))
            {
                w.Open($"if (n{u.Last})");
                if (u.Primary is { } pool && plan.PoolRelu.Contains(pool.Id))
                {
                    bool write = plan.OverwriteGrad.Contains(Storage(plan, pool.Input));
                    w.Line($"// {pool.Label} + ReLU backward (ReLU's mask from the fused output, then the scatter)");
                    if (s.Ops[Storage(plan, pool.Input)].Kind != OpKind.Input)
                        w.Line($"if (n{pool.Input}) {K}PoolingKernels.MaxPool2dBackward(g{pool.Input}, g{u.Last}, a{pool.Id}, {PoolGeo(pool)}, accumulate: {(write ? "false" : "true")}, reluOutput: v{u.Last}{PoolBiasArgument(s, plan, pool)});");
                    w.Close();
                    continue;
                }
                if (u.Primary is { } biased && plan.PoolBias.Values.Any(c => c.Id == biased.Id))
                    w.Line($"// {biased.Label}'s bias gradient: summed by the max-pool's backward above");
                else if (u.Stages.Count > 0) EmitChainBackward(w, s, plan, u);
                if (u.Primary is { } op) EmitPrimaryBackward(w, s, plan, op);
                w.Close();
            }
            w.Line("return loss;");
            w.Close();
            w.Line();
        }

        /// <summary>
        /// Gradients with exactly one backward contribution that can write instead of add (a fused chain's input, the
        /// input of a Linear, Conv2d, MaxPool2d, SelfAttention or embedding add): their buffers need no clearing.
        /// </summary>
        private static HashSet<int> SingleWriterGradients(NetworkSpec s, Plan plan)
        {
            var writers = new Dictionary<int, int>();
            var capable = new HashSet<int>();
            void Add(int storage, bool canWrite)
            {
                writers[storage] = writers.TryGetValue(storage, out var n) ? n + 1 : 1;
                if (canWrite) capable.Add(storage);
            }
            Add(Storage(plan, s.Output), false); // the loss adds into it
            foreach (var u in plan.Units)
            {
                int src = Storage(plan, u.Source);
                if (u.Stages.Any(st => st.Kind != StageKind.Bias) && s.Ops[src].Kind != OpKind.Input) Add(src, true);
                if (u.Primary is not { } op) continue;
                foreach (int inp in new[] { op.Input, op.Input2 })
                {
                    if (inp < 0) continue;
                    int st = Storage(plan, inp);
                    if (s.Ops[st].Kind == OpKind.Input) continue;
                    Add(st, op.Kind is OpKind.Linear or OpKind.Conv2d or OpKind.MaxPool2d or OpKind.SelfAttention or OpKind.AddPositions or OpKind.AddTokenType);
                }
            }
            return new HashSet<int>(writers.Where(kv => kv.Value == 1 && capable.Contains(kv.Key)).Select(kv => kv.Key));
        }

        private static void EmitSequenceLocal(SourceWriter w, NetworkSpec s)
        {
            if (IsSequence(s)) w.Line("int T = sequence; // this batch's sequence length (≤ MaxSequence); sizes below are expressions of it");
        }

        private static void EmitTargetCheck(SourceWriter w, NetworkSpec s, bool ce)
        {
            var outShape = s.Ops[s.Output].OutShape;
            if (ce)
                w.Line($"if (labels.Length != batch) throw new global::System.ArgumentException(\"{s.TypeName}: \" + labels.Length + \" labels for a batch of \" + batch + \".\", nameof(labels));");
            else if (IsSequence(s))
                w.Line($"if (targets.Length != batch * {Size(outShape)}) throw new global::System.ArgumentException(\"{s.TypeName}: targets have \" + targets.Length + \" floats, but batch \" + batch + \" × [{string.Join(", ", outShape.Select(Dim))}] needs \" + (batch * {Size(outShape)}) + \".\", nameof(targets));");
            else
                w.Line($"if (targets.Length != batch * OutputFeatures) throw new global::System.ArgumentException(\"{s.TypeName}: targets have \" + targets.Length + \" floats, but batch \" + batch + \" × OutputFeatures needs \" + (batch * OutputFeatures) + \".\", nameof(targets));");
        }

        private static string StageBackward(Stage st, int prevValue, bool vector, string i)
        {
            string load(string name) => vector ? $"{V}.LoadUnsafe(ref {name}_, (nuint){i})" : $"{US}.Add(ref {name}_, {i})";
            return st.Kind switch
            {
                StageKind.Relu => $"g = {E}.ReluGrad({load("v" + st.Value)}, g);",
                StageKind.Tanh => $"g = {E}.TanhGrad({load("v" + st.Value)}, g);",
                StageKind.Sigmoid => $"g = {E}.SigmoidGrad({load("v" + st.Value)}, g);",
                StageKind.Gelu => $"g = {E}.GeluGrad({load(prevValue < 0 ? "src" : "v" + prevValue)}, g);",
                StageKind.Dropout => $"g *= {load("m" + st.Value)};",
                _ => "",
            };
        }

        private static void EmitChainBackward(SourceWriter w, NetworkSpec s, Plan plan, Unit u)
        {
            var (rows, cols, channels, colBias) = ChainShape(s, u);
            bool bias = u.Stages[0].Kind == StageKind.Bias;
            bool elementwise = u.Stages.Any(st => st.Kind != StageKind.Bias);
            int src = Storage(plan, u.Source);
            bool srcIsInput = s.Ops[src].Kind == OpKind.Input;
            w.Line($"// fused backward: {string.Join(" + ", u.Stages.Select(st => st.Kind.ToString()))}");
            w.Open();
            w.Line($"int rows = {rows}, cols = {cols};");
            w.Line($"ref float gy_ = ref {MM}.GetReference(g{u.Last});");
            bool writeDz = elementwise && !srcIsInput;
            if (writeDz) w.Line($"ref float gz_ = ref {MM}.GetReference(g{src});");
            if (writeDz) w.Line($"bool writeDz = n{src};"); 
            if (u.Stages.Any(st => st.Kind == StageKind.Gelu) && (u.Stages[0].Kind == StageKind.Gelu)) w.Line($"ref float src_ = ref {MM}.GetReference(v{src});");
            foreach (var st in u.Stages)
            {
                if (st.Kind is StageKind.Relu or StageKind.Tanh or StageKind.Sigmoid) w.Line($"ref float v{st.Value}_ = ref {MM}.GetReference(v{st.Value});");
                if (st.Kind == StageKind.Dropout) w.Line($"ref float m{st.Value}_ = ref {MM}.GetReference(m{st.Value});");
            }
            for (int j = 1; j < u.Stages.Count; j++)
                if (u.Stages[j].Kind == StageKind.Gelu && u.Stages[j - 1].Kind is not (StageKind.Relu or StageKind.Tanh or StageKind.Sigmoid))
                    w.Line($"ref float v{u.Stages[j - 1].Value}_ = ref {MM}.GetReference(v{u.Stages[j - 1].Value});");
            if (bias)
            {
                var pb = Param(s, u.Primary!, "bias");
                w.Line($"global::System.Span<float> db = {PG(pb)};");
                w.Line("ref float db_ = ref " + MM + ".GetReference(db);");
            }
            w.Open("for (int r = 0; r < rows; r++)");
            if (bias && !colBias) { w.Line($"var acc = {V}<float>.Zero;"); w.Line("float accs = 0f;"); }
            w.Line("int i = r * cols, end = i + cols, j = 0;");
            foreach (bool vector in new[] { true, false })
            {
                w.Open(vector ? "for (; i <= end - 16; i += 16, j += 16)" : "for (; i < end; i++, j++)");
                w.Line(vector ? $"var g = {V}.LoadUnsafe(ref gy_, (nuint)i);" : $"float g = {US}.Add(ref gy_, i);");
                for (int j = u.Stages.Count - 1; j >= 0; j--)
                {
                    var st = u.Stages[j];
                    if (st.Kind == StageKind.Bias)
                    {
                        if (colBias)
                            w.Line(vector ? $"if (!db.IsEmpty) {V}.StoreUnsafe({V}.LoadUnsafe(ref db_, (nuint)j) + g, ref db_, (nuint)j);" : "if (!db.IsEmpty) db[j] += g;");
                        else w.Line(vector ? "acc += g;" : "accs += g;");
                        continue;
                    }
                    int prev = j == 0 ? -1 : u.Stages[j - 1].Value;
                    w.Line(StageBackward(st, prev, vector, "i"));
                }
                if (writeDz && plan.OverwriteGrad.Contains(src))
                    w.Line(vector ? $"if (writeDz) {V}.StoreUnsafe(g, ref gz_, (nuint)i);" : $"if (writeDz) {US}.Add(ref gz_, i) = g;");
                else if (writeDz)
                    w.Line(vector ? $"if (writeDz) {V}.StoreUnsafe({V}.LoadUnsafe(ref gz_, (nuint)i) + g, ref gz_, (nuint)i);" : $"if (writeDz) {US}.Add(ref gz_, i) += g;");
                w.Close();
            }
            if (bias && !colBias) w.Line($"if (!db.IsEmpty) db[r % {channels}] += {V}.Sum(acc) + accs;");
            w.Close();
            w.Close();
        }

        /// <summary>", biasGradient: …" when the pool's backward also sums its input convolution's bias gradient.</summary>
        private static string PoolBiasArgument(NetworkSpec s, Plan plan, OpSpec pool) =>
            plan.PoolBias.TryGetValue(pool.Id, out var conv) ? $", biasGradient: {PG(Param(s, conv, "bias"))}" : "";

        private static void EmitPrimaryBackward(SourceWriter w, NetworkSpec s, Plan plan, OpSpec op)
        {
            int inStore = Storage(plan, op.Input);
            bool inputIsData = s.Ops[inStore].Kind == OpKind.Input;
            string x = $"v{inStore}";
            string dx = inputIsData ? "default" : $"(n{op.Input} ? g{op.Input} : default)";
            string dy = $"g{op.Id}";
            bool write = !inputIsData && plan.OverwriteGrad.Contains(inStore);
            w.Line($"// {op.Label} backward");
            switch (op.Kind)
            {
                case OpKind.Conv2d:
                    w.Line($"{K}Conv2dKernels.Backward({dx}, {PG(Param(s, op, "weight"))}, {dy}, {x}, {P(Param(s, op, "weight"))}, {Conv2dGeo(s, op, "batch")}, ws.Scratch.Span, accumulateDx: {(write ? "false" : "true")}, {WeightCache(op)});");
                    break;
                case OpKind.Linear:
                {
                    var i = s.Layers[op.Layer].Ints;
                    w.Line($"{K}LinearKernels.Backward({dx}, {PG(Param(s, op, "weight"))}, {dy}, {x}, {P(Param(s, op, "weight"))}, {Rows(op)}, {i[0]}, {i[1]}{(write ? ", accumulateDx: false" : "")}{(plan.WrittenWeights.Contains(Param(s, op, "weight")) ? ", accumulateDw: false" : "")});");
                    break;
                }
                case OpKind.MaxPool2d:
                    if (!inputIsData) w.Line($"if (n{op.Input}) {K}PoolingKernels.MaxPool2dBackward(g{op.Input}, {dy}, a{op.Id}, {PoolGeo(op)}{(plan.PoolBias.ContainsKey(op.Id) ? $", accumulate: {(write ? "false" : "true")}, reluOutput: default{PoolBiasArgument(s, plan, op)}" : write ? ", accumulate: false" : "")});");
                    break;
                case OpKind.AvgPool2d:
                    if (!inputIsData) w.Line($"if (n{op.Input}) {K}PoolingKernels.AvgPool2dBackward(g{op.Input}, {dy}, {PoolGeo(op)});");
                    break;
                case OpKind.BatchNorm2d:
                    w.Line($"{K}BatchNormKernels.Backward({dx}, {PG(Param(s, op, "weight"))}, {PG(Param(s, op, "bias"))}, {dy}, {x}, sm{op.Id}, si{op.Id}, {P(Param(s, op, "weight"))}, batch, {op.InShape[0]}, {op.InShape[1] * op.InShape[2]});");
                    break;
                case OpKind.LayerNorm:
                    w.Line($"{K}LayerNormKernels.Backward({dx}, {PG(Param(s, op, "weight"))}, {PG(Param(s, op, "bias"))}, {dy}, {x}, mean{op.Id}, rstd{op.Id}, {P(Param(s, op, "weight"))}, {Rows(op)}, {s.Layers[op.Layer].Ints[0]});");
                    break;
                case OpKind.Softmax:
                    if (!inputIsData) w.Line($"if (n{op.Input}) {K}SoftmaxKernels.Backward(g{op.Input}, {dy}, v{op.Id}, {Rows(op)}, {Dim(op.OutShape[op.OutShape.Count - 1])});");
                    break;
                case OpKind.Embedding:
                {
                    var pw = Param(s, op, "weight");
                    w.Line($"if ({pw.Field}.RequiresGrad) {K}EmbeddingKernels.Backward(_store.Gradient({pw.Field}), {dy}, {x}, batch * {Size(op.InShape)}, {s.Layers[op.Layer].Ints[1]});");
                    break;
                }
                case OpKind.AddPositions:
                case OpKind.AddTokenType:
                {
                    var pw = Param(s, op, "weight");
                    int dim = s.Layers[op.Layer].Ints[1];
                    if (!inputIsData) w.Line(write ? $"if (n{op.Input}) {dy}.CopyTo(g{op.Input});" : $"if (n{op.Input}) {E}.AddInPlace(g{op.Input}, {dy});");
                    w.Line(op.Kind == OpKind.AddPositions
                        ? $"if ({pw.Field}.RequiresGrad) {K}EmbeddingKernels.AddPositionsBackward(_store.Gradient({pw.Field}), {dy}, batch, {Dim(op.InShape[0])}, {dim});"
                        : $"if ({pw.Field}.RequiresGrad) {K}LinearKernels.BiasBackward(_store.Gradient({pw.Field}).Slice(0, {dim}), {dy}, {Rows(op)}, {dim});");
                    break;
                }
                case OpKind.SelfAttention:
                {
                    var l = s.Layers[op.Layer];
                    int e = l.Ints[0], heads = l.Ints[1];
                    string n = $"{Rows(op)} * {e}";
                    w.Line($"var dq = gq.Slice(0, {n}); var dk = gk.Slice(0, {n}); var dv = gv.Slice(0, {n});");
                    w.Line($"{K}AttentionKernels.Backward(dq, dk, dv, {dy}, p{op.Id}, aq{op.Id}, ak{op.Id}, av{op.Id}, {(l.Real > 0 ? $"dm{op.Id}" : "default")}, batch, {Dim(op.InShape[0])}, {heads}, {e / heads}, ws.Scratch.Span, accumulate: false);");
                    bool first = true;
                    foreach (var (part, name) in new[] { ("dq", "query"), ("dk", "key"), ("dv", "value") })
                    {
                        // The query projection's dx writes the input's gradient when nothing else contributes to it.
                        w.Line($"{K}LinearKernels.Backward({dx}, {PG(Param(s, op, name + ".weight"))}, {part}, {x}, {P(Param(s, op, name + ".weight"))}, {Rows(op)}, {e}, {e}{(first && write ? ", accumulateDx: false" : "")});");
                        w.Line($"{K}LinearKernels.BiasBackward({PG(Param(s, op, name + ".bias"))}, {part}, {Rows(op)}, {e});");
                        first = false;
                    }
                    break;
                }
                case OpKind.SelectToken:
                    if (!inputIsData) w.Line($"if (n{op.Input}) {K}SequenceKernels.SelectBackward(g{op.Input}, {dy}, batch, T, {Size(op.OutShape)}, {op.Ints[0]});");
                    break;
                case OpKind.MeanOverSequence:
                    if (!inputIsData) w.Line($"if (n{op.Input}) {K}SequenceKernels.MeanBackward(g{op.Input}, {dy}, mask, batch, T, {Size(op.OutShape)});");
                    break;
                case OpKind.Add:
                    foreach (int inp in new[] { op.Input, op.Input2 })
                        if (s.Ops[Storage(plan, inp)].Kind != OpKind.Input) w.Line($"if (n{inp}) {E}.AddInPlace(g{inp}, {dy});");
                    break;
            }
        }

        private static void EmitEvaluate(SourceWriter w, NetworkSpec s, Plan plan)
        {
            bool ce = s.Loss == LossKind.CrossEntropy;
            string outSize = Size(s.Ops[s.Output].OutShape);
            string outName = LossSignature(s.Loss).OutName;
            OpenLossMethod(w, s, "EvaluateLoss", "The mean loss in evaluation mode, without gradients. Safe to call from many threads at once.");
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"EvaluateLoss\");");
            w.Open("try");
            w.Line($"var y = ForwardEval(ws, input, {BatchArgs(s)});");
            w.Line($"if (!{outName}.IsEmpty) y.CopyTo({outName});");
            if (ce)
            {
                w.Line($"var probs = ws.Act.Span.Slice({plan.RegionOffset["probs"]} * ws.Capacity, {outSize} * batch);");
                w.Line($"return {K}CrossEntropyKernels.Forward(probs, y, labels, batch, {outSize}, {F(s.LabelSmoothing)});");
            }
            else w.Line($"return {K}MseKernels.Forward(y, targets, batch * {outSize});");
            w.Close();
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
        }

        // ------------------------------------------------------------------ workspace

        private static void EmitWorkspace(SourceWriter w, NetworkSpec s, Plan plan)
        {
            int ints = plan.IntRegions.Sum(r => int.Parse(r.PerSample)), stats = plan.Stats.Sum(r => r.Size);
            var scratchOps = s.Ops.Where(o => o.Kind is OpKind.Conv2d or OpKind.SelfAttention).ToList();
            string ScratchOf(OpSpec o) => o.Kind == OpKind.Conv2d
                ? $"{K}Conv2dKernels.ScratchSize({Conv2dGeo(s, o, "1")})"
                : $"{K}AttentionKernels.ScratchSize({(o.InShape[0] == Seq ? s.MaxSequence : o.InShape[0])})";
            var scratchSizes = scratchOps.Select(ScratchOf).Distinct().ToList();
            string scratch = scratchSizes.Count == 0 ? "1" : string.Join(", ", scratchSizes);
            w.Line("/// <summary>Activations, their gradients (training only) and scratch for up to Capacity samples.</summary>");
            w.Open($"private sealed class Workspace : {R}IWorkspace");
            w.Line("public int Capacity { get; }");
            w.Line("public bool ForTraining { get; }");
            w.Line($"public readonly {R}AlignedBuffer Act, Grad, Stats, Scratch;");
            w.Line("public readonly int[] Ints;");
            w.Open("public Workspace(int capacity, bool forTraining)");
            w.Line("Capacity = capacity;");
            w.Line("ForTraining = forTraining;");
            w.Line($"if ((long){plan.OffsetTotal} * capacity > int.MaxValue || (long){plan.GradTotal} * capacity > int.MaxValue)");
            w.Line($"    throw new global::System.InvalidOperationException(\"{s.TypeName}: a batch of \" + capacity + \" samples needs \" + ((long){plan.OffsetTotal} * capacity * 4 >> 20) + \" MiB of activations and \" + ((long){plan.GradTotal} * capacity * 4 >> 20) + \" MiB of their gradients, more than one workspace arena holds (2^31 floats); use batches of at most \" + MaxWorkspaceBatch + \" samples.\");");
            w.Line($"Act = new {R}AlignedBuffer((long){plan.OffsetTotal} * capacity);");
            w.Line($"Grad = new {R}AlignedBuffer(forTraining ? (long){plan.GradTotal} * capacity : 0);");
            w.Line($"{K}Gemm.ReserveThreadBuffers(); // this thread's GEMM packing buffers, so later steps allocate nothing");
            w.Line($"Stats = new {R}AlignedBuffer({Math.Max(stats, 1)});");
            w.Line($"Scratch = new {R}AlignedBuffer({(scratchSizes.Count <= 1 ? scratch : $"global::System.Linq.Enumerable.Max(new long[] {{ {scratch} }})")});");
            w.Line($"Ints = new int[{Math.Max(ints, 1)} * capacity];");
            w.Close();
            w.Line("public void Dispose() { Act.Dispose(); Grad.Dispose(); Stats.Dispose(); Scratch.Dispose(); }");
            w.Close();
            w.Line();
            w.Line("// One workspace per concurrent call (one in all for a single caller); TrainStep keeps the instance to itself.");
            w.Line("// Room for DefaultCapacity samples up front (fewer when that would not fit one arena), more only when a batch needs it.");
            w.Line("private static int InitialCapacity => global::System.Math.Min(DefaultCapacity, MaxWorkspaceBatch);");
            w.Line($"private readonly {R}WorkspacePool<Workspace> _workspaces = new(\"{s.TypeName}\", static (capacity, forTraining) => new Workspace(capacity, forTraining));");
            w.Line($"/// <summary>The largest batch one workspace can hold (its activation and gradient arenas are each at most 2^31 floats).</summary>");
            w.Line($"public static int MaxWorkspaceBatch => (int)global::System.Math.Max(1L, int.MaxValue / global::System.Math.Max(1L, global::System.Math.Max((long){plan.OffsetTotal}, (long){plan.GradTotal})));");
            w.Line();
            w.Line("/// <summary>Frees the workspace (and the parameters when this network owns them).</summary>");
            w.Open("public void Dispose()");
            w.Line("_workspaces.Dispose();");
            w.Line("if (_ownsStore) _store.Dispose();");
            w.Close();
        }
    }
}
