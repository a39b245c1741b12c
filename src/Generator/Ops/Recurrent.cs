using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[LSTM(inputSize, hiddenSize, numLayers, bidirectional)]</c> / <c>[GRU(…)]</c>, read from a layer's arguments.</summary>
    internal readonly record struct RecurrentArgs(int Input, int Hidden, int Layers, bool Bidirectional, bool Bias)
    {
        public int Directions => Bidirectional ? 2 : 1;
        public int Width => Directions * Hidden;
        /// <summary>Features into layer <paramref name="l"/>: the input's, then the layer below's output.</summary>
        public int InputOf(int l) => l == 0 ? Input : Width;
        public static RecurrentArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Ints[2], l.Ints[3] != 0, l.Bias);

        /// <summary>PyTorch's suffix of one layer and direction's tensors: "_l0", "_l1_reverse".</summary>
        public static string Suffix(int l, int d) => $"_l{l}{(d == 1 ? "_reverse" : "")}";
    }

    /// <summary>
    /// nn.LSTM and nn.GRU (batch first) over a [T, F] sequence: one runtime call per layer and direction forward and
    /// backward (through time). Each saves its gates, states and cells / hidden terms; backward turns them into their
    /// gradients in place, so training adds only a carry region and, for stacked layers, two gradient regions that
    /// all recurrent ops of a kind share. The attention mask makes padded positions keep the state (packed sequences).
    /// </summary>
    internal sealed class RecurrentOp : OpDefinition
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("inputSize"), Argument.Int("hiddenSize"), Argument.Int("numLayers", ArgumentRule.Positive, 1),
            Argument.Int("bidirectional", ArgumentRule.None), Argument.Bias,
        };

        private readonly bool _lstm;

        public RecurrentOp(bool lstm) { _lstm = lstm; }

        public override OpKind Kind => _lstm ? OpKind.Lstm : OpKind.Gru;
        public override string Name => _lstm ? "LSTM" : "GRU";
        public override LayerKind? Layer => _lstm ? LayerKind.LSTM : LayerKind.GRU;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override bool ReadsMask => true;

        private int Gates => _lstm ? 4 : 3;
        private string Prefix => _lstm ? "lstm" : "gru";

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            // PyTorch's names, and its init: every tensor U(-1/√hidden, 1/√hidden).
            var a = RecurrentArgs.Of(l);
            string bound = $"1f / global::System.MathF.Sqrt({a.Hidden})";
            for (int layer = 0; layer < a.Layers; layer++)
                for (int d = 0; d < a.Directions; d++)
                {
                    string suffix = RecurrentArgs.Suffix(layer, d);
                    add("weight_ih" + suffix, new[] { Gates * a.Hidden, a.InputOf(layer) }, "Weight", $"Uniform({bound})");
                    add("weight_hh" + suffix, new[] { Gates * a.Hidden, a.Hidden }, "Weight", $"Uniform({bound})");
                    if (!a.Bias) continue;
                    add("bias_ih" + suffix, new[] { Gates * a.Hidden }, "Bias", $"Uniform({bound})");
                    add("bias_hh" + suffix, new[] { Gates * a.Hidden }, "Bias", $"Uniform({bound})");
                }
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = RecurrentArgs.Of(l);
            return $"new {Runtime}{Name}(_store, {stateName}, {a.Input}, {a.Hidden}, {a.Layers}, {(a.Bidirectional ? "true" : "false")}, {(a.Bias ? "true" : "false")})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = RecurrentArgs.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            string who = $"{a.Who} ({Name})";
            if (shape.Length != 2) { walker.Rank(a.Invocation, who, "[T, F] (a sequence of feature vectors)", shape); return -1; }
            if (shape[1] == Shapes.Sequence) { walker.Sequence(a.Invocation, who, "its features must be a fixed size", shape); return -1; }
            if (shape[1] != i.Input &&
                !p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inputSize"), ForwardWalker.Int(shape[1]), a.Who, $"{i.Input} features per position ({Name}({i.Input}, {i.Hidden}))", walker.Producer(a.Input), walker.FeatureText(a.Input, shape), walker.InputText, ""))
                return -1;
            return p.AddOp(Kind, a.Input, -1, a.Layer.Layer, shape, new[] { shape[0], i.Width }, System.Array.Empty<int>(), 0, a.Who);
        }

        // Region names: gates, states and cells / hidden terms per layer and direction; the output of every layer but the top one.
        private static string GatesOf(OpSpec op, int k) => $"rg{op.Id}_{k}";
        private static string StatesOf(OpSpec op, int k) => $"rs{op.Id}_{k}";
        private static string ExtraOf(OpSpec op, int k) => $"re{op.Id}_{k}";
        private static string LayerOutput(OpSpec op, int l) => $"ry{op.Id}_{l}";

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op)
        {
            var a = RecurrentArgs.Of(s.Layers[op.Layer]);
            int t = op.InShape[0];
            for (int l = 0; l < a.Layers; l++)
            {
                for (int d = 0; d < a.Directions; d++)
                {
                    int k = l * a.Directions + d;
                    regions.Add(GatesOf(op, k), new[] { t, Gates * a.Hidden });
                    regions.Add(StatesOf(op, k), new[] { t, a.Hidden });
                    regions.Add(ExtraOf(op, k), new[] { t, a.Hidden });
                }
                if (l < a.Layers - 1) regions.Add(LayerOutput(op, l), new[] { t, a.Width });
            }
        }

        public override void SharedRegions(RegionBuilder regions, NetworkSpec s, IReadOnlyList<OpSpec> ops)
        {
            // The carry of the widest hidden size; stacked layers pass gradients down through alternating regions.
            var args = ops.Select(o => (Op: o, Args: RecurrentArgs.Of(s.Layers[o.Layer]))).ToList();
            regions.Add(Prefix + "_carry", new[] { 3 * args.Max(x => x.Args.Hidden) });
            var stacked = args.Where(x => x.Args.Layers > 1).ToList();
            if (stacked.Count == 0) return;
            var widest = stacked.OrderByDescending(x => Shapes.MaxSize(s, new[] { x.Op.InShape[0], x.Args.Width })).First();
            // Layer l reads gy{l % 2} and writes gy{(l - 1) % 2}: the second region only serves three layers or more.
            int count = stacked.Any(x => x.Args.Layers > 2) ? 2 : 1;
            for (int i = 0; i < count; i++) regions.Add($"{Prefix}_gy{i}", new[] { widest.Op.InShape[0], widest.Args.Width });
        }

        private static string LayerInput(CpuContext c, OpSpec op, int l) => l == 0 ? c.Value(op.Input) : LayerOutput(op, l - 1);

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = RecurrentArgs.Of(c.Layer(op));
            string mask = c.IsSequence ? "mask" : "default", seq = Shapes.Dim(op.InShape[0]);
            for (int l = 0; l < a.Layers; l++)
            {
                string output = l == a.Layers - 1 ? c.Output(op) : LayerOutput(op, l);
                for (int d = 0; d < a.Directions; d++)
                {
                    int k = l * a.Directions + d;
                    string suffix = RecurrentArgs.Suffix(l, d);
                    string biases = a.Bias ? $"{c.Read(op, "bias_ih" + suffix)}, {c.Read(op, "bias_hh" + suffix)}" : "default, default";
                    if (a.Layers > 1 || a.Bidirectional) c.Line($"// layer {l}, {(d == 0 ? "forward" : "reverse")}");
                    c.Line($"{Kernels}RecurrentKernels.{(_lstm ? "Lstm" : "Gru")}Forward({output}, {a.Width}, {d * a.Hidden}, {GatesOf(op, k)}, {StatesOf(op, k)}, {ExtraOf(op, k)}, " +
                        $"{LayerInput(c, op, l)}, {c.Read(op, "weight_ih" + suffix)}, {c.Read(op, "weight_hh" + suffix)}, {biases}, {mask}, batch, {seq}, {a.InputOf(l)}, {a.Hidden}, reverse: {(d == 1 ? "true" : "false")}{(_lstm ? "" : $", {Prefix}_carry")});");
                }
            }
        }

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var a = RecurrentArgs.Of(c.Layer(op));
            string mask = c.IsSequence ? "mask" : "default", seq = Shapes.Dim(op.InShape[0]);
            for (int l = a.Layers - 1; l >= 0; l--)
            {
                string dy = l == a.Layers - 1 ? $"g{op.Id}" : $"{Prefix}_gy{l % 2}";
                string dx = l == 0 ? c.InputGradient(op) : $"{Prefix}_gy{(l - 1) % 2}";
                if (l > 0) c.Line($"{dx}.Clear(); // layer {l - 1}'s output gradient: both directions of layer {l} add to it");
                for (int d = 0; d < a.Directions; d++)
                {
                    int k = l * a.Directions + d;
                    string suffix = RecurrentArgs.Suffix(l, d);
                    string biases = a.Bias ? $"{c.Gradient(op, "bias_ih" + suffix)}, {c.Gradient(op, "bias_hh" + suffix)}" : "default, default";
                    c.Line($"{Kernels}RecurrentKernels.{(_lstm ? "Lstm" : "Gru")}Backward({dx}, {c.Gradient(op, "weight_ih" + suffix)}, {c.Gradient(op, "weight_hh" + suffix)}, {biases}, " +
                        $"{dy}, {a.Width}, {d * a.Hidden}, {GatesOf(op, k)}, {StatesOf(op, k)}, {ExtraOf(op, k)}, {LayerInput(c, op, l)}, {c.Read(op, "weight_ih" + suffix)}, {c.Read(op, "weight_hh" + suffix)}, " +
                        $"{mask}, batch, {seq}, {a.InputOf(l)}, {a.Hidden}, reverse: {(d == 1 ? "true" : "false")}, {Prefix}_carry);");
                }
            }
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The device's regions of one op: gates, states and cells / hidden terms per layer and direction, the
        /// lower layers' outputs, and (shared by the ops of this kind) the gradient regions between layers and the carry.</summary>
        private (System.Func<int, string> Gates, System.Func<int, string> States, System.Func<int, string> Extra, System.Func<int, string> Output) GpuRegions(GpuContext c, OpSpec op)
        {
            var a = RecurrentArgs.Of(c.Layer(op));
            var s = c.Spec;
            int t = op.InShape[0];
            return (k => c.Region($"_rg{op.Id}_{k}", Shapes.MaxSize(s, new[] { t, Gates * a.Hidden })),
                k => c.Region($"_rs{op.Id}_{k}", Shapes.MaxSize(s, new[] { t, a.Hidden })),
                k => c.Region($"_re{op.Id}_{k}", Shapes.MaxSize(s, new[] { t, a.Hidden })),
                l => c.Region($"_ry{op.Id}_{l}", Shapes.MaxSize(s, new[] { t, a.Width })));
        }

        /// <summary>Each layer and direction: the input GEMM with its biases, then one kernel for the time loop.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var a = RecurrentArgs.Of(c.Layer(op));
            var r = GpuRegions(c, op);
            string mask = c.Spec.MaxSequence > 0 ? "Mask, true" : "default, false", seq = Shapes.Dim(op.InShape[0]);
            for (int l = 0; l < a.Layers; l++)
            {
                string output = l == a.Layers - 1 ? c.Output(op) : r.Output(l), input = l == 0 ? c.Value(op.Input) : r.Output(l - 1);
                for (int d = 0; d < a.Directions; d++)
                {
                    int k = l * a.Directions + d;
                    string suffix = RecurrentArgs.Suffix(l, d);
                    string biases = a.Bias ? $"{c.Read(op, "bias_ih" + suffix)}, {c.Read(op, "bias_hh" + suffix)}" : "default, default";
                    c.Launch($"K.RecurrentForward({(_lstm ? "true" : "false")}, {output}, {a.Width}, {d * a.Hidden}, {r.Gates(k)}, {r.States(k)}, {r.Extra(k)}, {input}, " +
                        $"{c.Read(op, "weight_ih" + suffix)}, {c.Read(op, "weight_hh" + suffix)}, {biases}, {mask}, {GpuScratch(c, op, a)}, batch, {seq}, {a.InputOf(l)}, {a.Hidden}, reverse: {(d == 1 ? "true" : "false")}); // layer {l}, {(d == 0 ? "forward" : "reverse")}",
                        ForwardLaunches(_lstm, a.Bias));
                }
            }
        }

        /// <summary>Through time from the top layer down; a lower layer's output gradient is cleared, then both directions above add to it.</summary>
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            var a = RecurrentArgs.Of(c.Layer(op));
            var r = GpuRegions(c, op);
            var stacked = c.Spec.Ops.Where(o => o.Kind == Kind).Select(o => (Op: o, Args: RecurrentArgs.Of(c.Spec.Layers[o.Layer]))).ToList();
            string carry = c.Region($"_{Prefix}_carry", 2 * stacked.Max(x => x.Args.Hidden));
            long widest = stacked.Max(x => Shapes.MaxSize(c.Spec, new[] { x.Op.InShape[0], x.Args.Width }));
            string mask = c.Spec.MaxSequence > 0 ? "Mask, true" : "default, false", seq = Shapes.Dim(op.InShape[0]);
            for (int l = a.Layers - 1; l >= 0; l--)
            {
                string dy = l == a.Layers - 1 ? c.Gradient(op.Id) : c.Region($"_{Prefix}_gy{l % 2}", widest);
                string dx = l > 0 ? c.Region($"_{Prefix}_gy{(l - 1) % 2}", widest) : c.GradientIfNeeded(op.Input);
                if (l > 0) c.Line($"global::ILGPU.Runtime.ArrayViewExtensions.MemSetToZero({dx}.SubView(0, (long)batch * {Shapes.Size(new[] { op.InShape[0], a.Width })})); // layer {l - 1}'s output gradient: both directions of layer {l} add to it");
                string input = l == 0 ? c.Value(op.Input) : r.Output(l - 1);
                for (int d = 0; d < a.Directions; d++)
                {
                    int k = l * a.Directions + d;
                    string suffix = RecurrentArgs.Suffix(l, d);
                    string biases = a.Bias ? $"{c.ParameterGradient(op, "bias_ih" + suffix)}, {c.ParameterGradient(op, "bias_hh" + suffix)}" : "default, default";
                    c.Launch($"K.RecurrentBackward({(_lstm ? "true" : "false")}, {dx}, {c.ParameterGradient(op, "weight_ih" + suffix)}, {c.ParameterGradient(op, "weight_hh" + suffix)}, {biases}, " +
                        $"{dy}, {a.Width}, {d * a.Hidden}, {r.Gates(k)}, {r.States(k)}, {r.Extra(k)}, {input}, {c.Read(op, "weight_ih" + suffix)}, {c.Read(op, "weight_hh" + suffix)}, " +
                        $"{mask}, {carry}, {GpuScratch(c, op, a)}, batch, {seq}, {a.InputOf(l)}, {a.Hidden}, reverse: {(d == 1 ? "true" : "false")});",
                        BackwardLaunches(_lstm, a.Bias, dx != "default"));
                }
            }
        }

        /// <summary>The library's scratch for one layer of this op (W_hh transposed forward, the shifted states backward).</summary>
        private string GpuScratch(GpuContext c, OpSpec op, RecurrentArgs a) =>
            c.Scratch($"{Gpu}GpuKernels.RecurrentScratch({(_lstm ? "true" : "false")}, batch, {Shapes.MaxSize(c.Spec, new[] { op.InShape[0] })}, {a.Hidden})");

        /// <summary>What GpuKernels.RecurrentForward launches: the input GEMM, its biases (a GRU adds b_hh in the loop),
        /// W_hh's transpose, the time loop.</summary>
        private static int ForwardLaunches(bool lstm, bool bias) => 3 + (bias ? (lstm ? 2 : 1) : 0);

        /// <summary>What GpuKernels.RecurrentBackward launches: the time loop, W_ih's GEMM and the input's, the bias sums
        /// (a GRU's b_hh in two parts), the shifted states and W_hh's GEMM (a GRU's in two parts).</summary>
        private static int BackwardLaunches(bool lstm, bool bias, bool inputGradient) => 3 + (inputGradient ? 1 : 0) + (bias ? (lstm ? 2 : 3) : 0) + (lstm ? 1 : 2);

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            // ONNX's LSTM/GRU are sequence-first with their own gate order (iofc, zrh): transpose in and out, reorder
            // the weights; the mask's row sums are the sequence lengths (right padding).
            var a = RecurrentArgs.Of(c.Layer(op));
            string v = $"v{op.Id}", lengths = c.Masked ? $"\"{v}_lengths\"" : "\"\"";
            if (c.Masked)
            {
                c.Line($"g.Node(\"Reshape\", new[] {{ \"mask_count\", g.Int64(true, -1) }}, \"{v}_lengths_f\");");
                c.Line($"g.Node(\"Cast\", new[] {{ \"{v}_lengths_f\" }}, {lengths}, (\"to\", 6));");
            }
            string x = c.Value(op.Input);
            for (int l = 0; l < a.Layers; l++)
            {
                string tensors(string name) => string.Join(", ", Enumerable.Range(0, 2).Select(d => d < a.Directions ? c.Read(op, name + RecurrentArgs.Suffix(l, d)) : "default"));
                string lstm = _lstm ? "true" : "false", at = $"{v}_l{l}";
                c.Line($"g.Node(\"Transpose\", new[] {{ {x} }}, \"{at}_x\", (\"perm\", new int[] {{ 1, 0, 2 }}));");
                c.Line($"var {at}_w = g.Initializer(\"{v}.W{l}\", {Kernels}RecurrentKernels.OnnxWeights({lstm}, {a.Hidden}, {a.InputOf(l)}, {tensors("weight_ih")}), {a.Directions}, {Gates * a.Hidden}, {a.InputOf(l)});");
                c.Line($"var {at}_r = g.Initializer(\"{v}.R{l}\", {Kernels}RecurrentKernels.OnnxWeights({lstm}, {a.Hidden}, {a.Hidden}, {tensors("weight_hh")}), {a.Directions}, {Gates * a.Hidden}, {a.Hidden});");
                string bias = "\"\"";
                if (a.Bias)
                {
                    c.Line($"var {at}_b = g.Initializer(\"{v}.B{l}\", {Kernels}RecurrentKernels.OnnxBiases({lstm}, {a.Hidden}, {tensors("bias_ih")}, {tensors("bias_hh")}), {a.Directions}, {2 * Gates * a.Hidden});");
                    bias = $"{at}_b";
                }
                string extra = _lstm ? "" : ", (\"linear_before_reset\", 1)";
                c.Line($"g.Node(\"{Name}\", new[] {{ \"{at}_x\", {at}_w, {at}_r, {bias}, {lengths} }}, \"{at}_y\", (\"hidden_size\", {a.Hidden}), (\"direction\", \"{(a.Bidirectional ? "bidirectional" : "forward")}\"){extra});");
                // Y is [T, directions, B, H]: to [B, T, directions·H].
                c.Line($"g.Node(\"Transpose\", new[] {{ \"{at}_y\" }}, \"{at}_yt\", (\"perm\", new int[] {{ 2, 0, 1, 3 }}));");
                string output = l == a.Layers - 1 ? c.Output(op) : $"\"{at}_out\"";
                c.Line($"g.Node(\"Reshape\", new[] {{ \"{at}_yt\", g.Int64(true, 0, 0, {IntLiteral(a.Width)}) }}, {output});");
                x = output;
            }
        }
    }
}
