using System;
using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Emit
{
    internal static partial class CpuEmitter
    {
        private static void EmitMembers(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            var outShape = s.Ops[s.Output].OutShape;
            long outSize = Shapes.MaxSize(s, outShape);
            static string AtMax(IEnumerable<int> shape) => Shapes.HasSequence(shape) ? " (at T = MaxSequence)" : "";
            foreach (var input in s.IsMultiInput ? s.Inputs.ToArray() : new[] { new InputSpec("input", s.InputShape, s.TokenInput, 0) })
            {
                string elems = input.Tokens ? "Token ids" : "Floats";
                string what = s.IsMultiInput ? $" of '{input.Name}'" : "";
                w.Line($"/// <summary>{elems} per input sample{what}: {string.Join("×", input.Shape.Select(Shapes.Dim))}{AtMax(input.Shape)}.</summary>");
                w.Line($"public const int {FeaturesConstant(s, input)} = {Shapes.MaxSize(s, input.Shape)};");
            }
            if (s.IsMultiOutput)
                foreach (var o in s.Outputs)
                {
                    var shape = s.Ops[o.Value].OutShape;
                    w.Line($"/// <summary>Floats per sample of output '{o.Name}': {string.Join("×", shape.Select(Shapes.Dim))}{AtMax(shape)}.</summary>");
                    w.Line($"public const int {FeaturesConstant(o.Name)} = {Shapes.MaxSize(s, shape)};");
                }
            else
            {
                w.Line($"/// <summary>Floats per output sample: {string.Join("×", outShape.Select(Shapes.Dim))}{AtMax(outShape)}.</summary>");
                w.Line($"public const int OutputFeatures = {outSize};");
            }
            if (c.IsSequence)
            {
                w.Line("/// <summary>The largest sequence length T the network accepts (the workspace is laid out for it).</summary>");
                w.Line($"public const int MaxSequence = {s.MaxSequence};");
            }
            if (!s.IsMultiInput) w.Line($"private static readonly int[] s_inputShape = new int[] {{ {string.Join(", ", s.InputShape.Select(d => d == Shapes.Sequence ? s.MaxSequence : d))} }};");
            if (!s.IsMultiOutput) w.Line($"private static readonly int[] s_outputShape = new int[] {{ {string.Join(", ", outShape.Select(d => d == Shapes.Sequence ? s.MaxSequence : d))} }};");
            w.Line($"private const int DefaultCapacity = {s.MaxBatch};");
            CrossEntropyLoss.EmitFields(c);
            w.Line();
            EmitParameterMembers(c);
            w.Line($"public string Name => \"{s.TypeName}\";");
            if (!s.IsMultiInput)
            {
                w.Line("public global::System.Collections.Generic.IReadOnlyList<int> InputShape => s_inputShape;");
                w.Line("public int InputSize => InputFeatures;");
            }
            if (!s.IsMultiOutput)
            {
                w.Line("public global::System.Collections.Generic.IReadOnlyList<int> OutputShape => s_outputShape;");
                w.Line("public int OutputSize => OutputFeatures;");
            }
            w.Line($"public {Runtime}ParameterStore Parameters => _store;");
            w.Line();
            EmitSummary(c);
            w.Line("/// <summary>Runs the user's Forward eagerly on tensors: the slow reference path.</summary>");
            if (s.IsMultiple)
            {
                string names = s.IsMultiInput ? InputArgs(s) : "x";
                string parameters = s.IsMultiInput ? string.Join(", ", s.Inputs.Select(i => $"{Runtime}Tensor {i.Name}")) : $"{Runtime}Tensor x";
                w.Line($"public {EagerReturn(s.Outputs.Select(o => o.Name).ToList())} ForwardEager({parameters}) => Forward({names});");
                w.Line();
                EmitMultiInputCheck(c);
                return;
            }
            w.Line($"public {Runtime}Tensor ForwardEager({Runtime}Tensor x) => Forward(x);");
            w.Line($"{Runtime}Tensor {Runtime}ILayer.Forward({Runtime}Tensor x) => Forward(x);");
            if (c.IsSequence) w.Line("int " + Runtime + "ISequenceNetwork.MaxSequence => MaxSequence;");
            w.Line();
            if (c.IsSequence) { EmitSequenceCheck(c); return; }
            w.Line($"private static void CheckInput(global::System.ReadOnlySpan<{InputElement(s.TokenInput)}> input, int batch, int output, string method) =>");
            w.Line($"    {Runtime}NetworkArguments.Check(\"{s.TypeName}\", method, input.Length, batch, InputFeatures, \"{string.Join(", ", s.InputShape)}\", output, OutputFeatures, \"{string.Join(", ", s.Ops[s.Output].OutShape)}\");");
            w.Line();
        }

        /// <summary>What networks and blocks share: the store, parameter and layer fields, DeclareParameters, the
        /// constructors, Bind and the layer properties.</summary>
        private static void EmitParameterMembers(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            // A block whose layers take its arguments (BlockArg placeholders) is built by the networks that apply it, with
            // those arguments; one that gives arguments to its own sub-blocks cannot declare their tensors on its own either.
            bool takesArguments = TakesArguments(s);
            bool standalone = IsStandalone(s);
            w.Line($"private readonly {Runtime}ParameterStore _store;");
            if (standalone) w.Line("private readonly bool _ownsStore;");
            w.Line($"private readonly {Runtime}Rng _rng;");
            foreach (var p in s.Parameters) w.Line($"private {Runtime}ParameterInfo {p.Field} = null!;");
            if (plan.WrittenWeights.Count > 0) w.Line($"private {Runtime}ParameterInfo[] _writtenGrads = null!; // gradients TrainStep overwrites instead of clearing and adding");
            foreach (var l in s.Layers.Where(l => l.IsRootProperty)) w.Line($"private {LayerType(l)} {l.FieldName} = null!;");
            if (takesArguments) w.Line("private readonly int[] _args; // the block's arguments: BlockArg.A is _args[0], …");
            foreach (var group in s.Ops.GroupBy(o => o.Kind)) OpTable.Of(group.Key).EmitFields(c, group.ToList());
            w.Line();

            if (standalone) EmitStandaloneConstructor(c);
            w.Line("/// <summary>Binds to tensors of an existing store under <paramref name=\"prefix\"/> (composition, checkpoints).</summary>");
            if (takesArguments)
            {
                w.Line("/// <param name=\"args\">The block's arguments, as the [SubNetwork(Args = …)] applying it gives them.</param>");
                w.Open($"public {s.TypeName}({Runtime}ParameterStore store, string prefix, params int[] args)");
                w.Line("_store = store;");
                w.Line("_args = args;");
            }
            else
            {
                w.Open($"public {s.TypeName}({Runtime}ParameterStore store, string prefix)");
                w.Line("_store = store;");
            }
            w.Line($"_rng = new {Runtime}Rng(0x9E3779B97F4A7C15UL);");
            w.Line("Bind(prefix);");
            w.Close();
            w.Line();
            w.Open("private void Bind(string prefix)");
            foreach (var p in s.Parameters) w.Line($"{p.Field} = _store[prefix + \"{p.Name}\"];");
            if (plan.WrittenWeights.Count > 0) w.Line($"_writtenGrads = new[] {{ {string.Join(", ", plan.WrittenWeights)} }};");
            foreach (var l in s.Layers.Where(l => l.IsRootProperty)) w.Line($"{l.FieldName} = {WithArguments(LayerConstruction(l))};");
            w.Close();
            w.Line();
            foreach (var l in s.Layers.Where(l => l.IsRootProperty))
                w.Line($"{l.Modifiers} {LayerType(l)} {l.Property} {{ get => {l.FieldName}; }}");
            w.Line();
        }

        /// <summary>A network, or a block that can declare all its tensors itself (no arguments taken or given).</summary>
        internal static bool IsStandalone(NetworkSpec s) =>
            !s.IsBlock || !TakesArguments(s) && !s.Layers.Any(l => l.Kind == LayerKind.SubNetwork && l.Ints.Count > 1);

        /// <summary>True when the class's layers use BlockArg placeholders (directly or passed on to a sub-block).</summary>
        internal static bool TakesArguments(NetworkSpec s) =>
            s.Layers.Any(l => l.Ints.Skip(l.Kind == LayerKind.SubNetwork ? 1 : 0).Any(v => Parsing.NetworkParser.PlaceholderIndex(v) >= 0));

        /// <summary>Emitted code with each BlockArg placeholder value replaced by the block's argument.</summary>
        private static string WithArguments(string code) =>
            System.Text.RegularExpressions.Regex.Replace(code, @"-100000([0-7])\b", m => $"_args[{m.Groups[1].Value}]");

        /// <summary>DeclareParameters and the constructor that builds its own store.</summary>
        private static void EmitStandaloneConstructor(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            w.Line("/// <summary>Declares every tensor of this network (PyTorch state-dict names, shapes, default initialisation).</summary>");
            w.Open($"public static void DeclareParameters({Runtime}ParameterStoreBuilder b, string prefix)");
            foreach (var p in s.Parameters)
            {
                string shape = p.Shape.Count == 0 ? "global::System.Array.Empty<int>()" : $"new int[] {{ {string.Join(", ", p.Shape)} }}";
                w.Line($"b.{(p.IsBuffer ? "AddBuffer" : "Add")}(prefix + \"{p.Name}\", {shape}, {Runtime}ParameterRole.{p.Role}, {Runtime}ParameterInit.{p.Init});");
            }
            // A block's sub-networks declare their own tensors (a network has them inlined above).
            if (s.IsBlock)
                foreach (var l in s.Layers.Where(l => l.Kind == LayerKind.SubNetwork))
                    for (int i = 0; i < l.Ints[0]; i++)
                        w.Line($"{l.SubType}.DeclareParameters(b, prefix + \"{l.StateName}.{(l.Ints[0] > 1 ? i + "." : "")}\");");
            w.Close();
            w.Line();
            w.Line("/// <summary>Creates the network with its own parameters, initialised as PyTorch does from <paramref name=\"seed\"/>.</summary>");
            w.Open($"public {s.TypeName}(ulong seed = 0)");
            w.Line($"var b = new {Runtime}ParameterStoreBuilder();");
            w.Line("DeclareParameters(b, \"\");");
            w.Line("_store = b.Build();");
            w.Line("_store.Initialize(seed);");
            w.Line("_ownsStore = true;");
            w.Line($"_rng = new {Runtime}Rng(seed ^ 0x9E3779B97F4A7C15UL);");
            w.Line("Bind(\"\");");
            EmbeddingOp.EmitInitialisation(c);
            w.Close();
            w.Line();
        }

        /// <summary>Summary(): every op with its per-sample output shape and parameter count, as torchsummary prints them,
        /// written out at generation time (the generator knows all of it).</summary>
        private static void EmitSummary(CpuContext c)
        {
            var s = c.Spec;
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            string Shape(IEnumerable<int> d) => "[" + string.Join(", ", d.Select(Shapes.Dim)) + "]";
            long Count(ParamSpec p) => p.Shape.Aggregate(1L, (a, d) => a * d);
            var rows = new List<(string Layer, string Shape, string Params)>();
            var counted = new HashSet<int>();
            foreach (var op in s.Ops.Where(o => o.Kind != OpKind.Input && !s.IsLossOp(o.Id))) // the network, not its loss method
            {
                var def = OpTable.Of(op.Kind);
                string layer = op.Layer >= 0 ? $"{s.Layers[op.Layer].StateName} ({def.Name})" : def.Name;
                string parameters = "0";
                if (op.Layer >= 0)
                {
                    var l = s.Layers[op.Layer];
                    var own = new HashSet<string>();
                    OpTable.Of(l.Kind).DeclareParameters(l, (suffix, _, _, _, _) => own.Add(l.StateName + "." + suffix));
                    long n = s.Parameters.Where(p => !p.IsBuffer && own.Contains(p.Name)).Sum(Count);
                    parameters = counted.Add(op.Layer) ? n.ToString("N0", inv) : "(shared)";
                }
                rows.Add((layer, Shape(op.OutShape), parameters));
            }
            long trainable = s.Parameters.Where(p => !p.IsBuffer).Sum(Count), buffers = s.Parameters.Where(p => p.IsBuffer).Sum(Count);
            int width = Math.Max(24, rows.Max(r => r.Layer.Length) + 2), shapeWidth = Math.Max(16, rows.Max(r => r.Shape.Length) + 2);
            var lines = new List<string>
            {
                $"{s.TypeName}: {(s.IsMultiInput ? "inputs " + string.Join(", ", s.Inputs.Select(i => i.Name + " " + Shape(i.Shape))) : "input " + Shape(s.InputShape))}{(s.MaxSequence > 0 ? $", T ≤ {s.MaxSequence}" : "")}",
                "Layer (op)".PadRight(width) + "Output shape".PadRight(shapeWidth) + "Param #".PadLeft(12),
            };
            lines.AddRange(rows.Select(r => r.Layer.PadRight(width) + r.Shape.PadRight(shapeWidth) + r.Params.PadLeft(12)));
            lines.Add($"Total params: {trainable.ToString("N0", inv)} trainable, {buffers.ToString("N0", inv)} in buffers");
            lines.Add($"Activations: {long.Parse(c.Plan.ActivationTotal, inv).ToString("N0", inv)} floats per sample{(s.MaxSequence > 0 ? " at T = MaxSequence" : "")}; gradients while training: {long.Parse(c.Plan.GradientTotal, inv).ToString("N0", inv)}");
            var memory = Planning.MemoryPlan.Of(s, c.Plan);
            lines.Add($"Memory to train at batch {s.MaxBatch} with AdamW: {Planning.MemoryPlan.MiB(memory.TotalBytes(s.MaxBatch, 3, true))} ({memory.Parts(s.MaxBatch, 3, true)}; plus kernel scratch); inference at batch 1: {Planning.MemoryPlan.MiB(memory.TotalBytes(1, 3, false))}");
            var w = c.Writer;
            w.Line("/// <summary>Every layer and op with its per-sample output shape and parameter count, as torchsummary prints them.</summary>");
            w.Line("public static string Summary() =>");
            w.Line("    \"\"\"");
            foreach (var line in lines) w.Line("    " + line);
            w.Line("    \"\"\";");
            w.Line();
        }

        /// <summary>The constant giving an input's values per sample: InputFeatures, or "ImageFeatures" for an input "image".</summary>
        internal static string FeaturesConstant(NetworkSpec s, InputSpec input) => s.IsMultiInput ? FeaturesConstant(input.Name) : "InputFeatures";

        /// <summary>"ImageFeatures" for an input "image", "InputIdsFeatures" for "input_ids".</summary>
        internal static string FeaturesConstant(string inputName) =>
            string.Concat(inputName.Split('_').Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p.Substring(1))) + "Features";

        /// <summary>Several inputs: the batch (and T, the mask), the output span, then each input by name.</summary>
        private static void EmitMultiInputCheck(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var outShape = s.Ops[s.Output].OutShape;
            string n = s.TypeName;
            string batch = c.IsSequence ? "global::System.ReadOnlySpan<int> mask, int batch, int T" : "int batch";
            // Several outputs: each span is checked on its own (NetworkArguments.CheckOutput); output is -1 here.
            string outSize = s.IsMultiOutput ? "0" : c.IsSequence ? Shapes.Size(outShape) : "OutputFeatures";
            string outText = s.IsMultiOutput ? "" : string.Join(", ", outShape.Select(Shapes.Dim));
            w.Open($"private static void CheckInput({InputParams(s)}, {batch}, int output, string method)");
            w.Line(c.IsSequence
                ? $"{Runtime}NetworkArguments.CheckCall(\"{n}\", method, mask, batch, T, MaxSequence, output, {outSize}, \"{outText}\");"
                : $"{Runtime}NetworkArguments.CheckCall(\"{n}\", method, default, batch, 1, 0, output, {outSize}, \"{outText}\");");
            foreach (var input in s.Inputs)
            {
                bool sequence = Shapes.HasSequence(input.Shape);
                int perPosition = Shapes.Product(input.Shape.Skip(sequence ? 1 : 0));
                string shape = string.Join(", ", input.Shape.Select(Shapes.Dim));
                w.Line($"{Runtime}NetworkArguments.CheckInput(\"{n}\", method, \"{input.Name}\", {input.Name}.Length, batch, {(sequence ? "T" : "1")}, {perPosition}, \"{shape}\");");
            }
            w.Close();
            w.Line();
        }

        private static void EmitSequenceCheck(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var outShape = s.Ops[s.Output].OutShape;
            string n = s.TypeName;
            int perPosition = Shapes.Product(s.InputShape.Skip(1));
            string tail = string.Concat(s.InputShape.Skip(1).Select(d => ", " + IntLiteral(d)));
            w.Line($"private static void CheckInput(global::System.ReadOnlySpan<{InputElement(s.TokenInput)}> input, global::System.ReadOnlySpan<int> mask, int batch, int T, int output, string method) =>");
            w.Line($"    {Runtime}NetworkArguments.CheckSequence(\"{n}\", method, input.Length, mask, batch, T, MaxSequence, {perPosition}, \"{tail}\", output, {Shapes.Size(outShape)}, \"{string.Join(", ", outShape.Select(Shapes.Dim))}\");");
            w.Line();
        }

        private static string LayerType(LayerSpec l) => l.Kind switch
        {
            LayerKind.SubNetwork => l.Ints[0] > 1 ? l.SubType + "[]" : l.SubType,
            _ => Runtime + l.Kind,
        };

        private static string LayerConstruction(LayerSpec l)
        {
            if (l.Kind != LayerKind.SubNetwork) return OpTable.Of(l.Kind).Construct(l, $"prefix + \"{l.StateName}\"");
            int copies = l.Ints[0];
            string args = string.Concat(l.Ints.Skip(1).Select(a => ", " + IntLiteral(a)));
            return copies > 1
                ? $"new {l.SubType}[] {{ {string.Join(", ", Enumerable.Range(0, copies).Select(i => $"new {l.SubType}(_store, prefix + \"{l.StateName}.{i}.\"{args})"))} }}"
                : $"new {l.SubType}(_store, prefix + \"{l.StateName}.\"{args})";
        }
    }
}
