using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[SelfAttention(embed, heads, dropout)]</c>, read from a layer's arguments.</summary>
    internal readonly record struct AttentionArgs(int Embed, int Heads, double Dropout)
    {
        public int HeadSize => Embed / Heads;
        public static AttentionArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Real);
    }

    /// <summary>
    /// Multi-head self-attention as Hugging Face's BertSelfAttention (query/key/value projections, scaled dot
    /// product, the padding mask added as float.MinValue, dropout on the probabilities). Saves the projections and the
    /// [H, T, T] probabilities; the projections' gradients live only inside one op's backward.
    /// </summary>
    internal sealed class SelfAttentionOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("embed"), Argument.Int("heads"), Argument.Real("dropout", 0, ArgumentRule.Probability) };
        private static readonly string[] s_parts = { "query", "key", "value" };

        public override OpKind Kind => OpKind.SelfAttention;
        public override string Name => "SelfAttention";
        public override LayerKind? Layer => LayerKind.SelfAttention;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override bool AlwaysHasBias => true;
        public override bool CanWriteInputGradient => true;
        public override bool ReadsMask => true;

        public override bool Check(NetworkParser parser, LayerDeclaration d)
        {
            int e = d.Ints[0], h = d.Ints[1];
            if (e % h == 0) return true;
            // The fix offers the divisor of embed nearest to what was written (ties: the smaller).
            int best = Enumerable.Range(1, e).Where(x => e % x == 0).OrderBy(x => Math.Abs(x - h)).ThenBy(x => x).First();
            parser.ReportWithFix(DiagnosticDescriptors.HeadsDoNotDivide, d.Args.Location("heads"), best.ToString(CultureInfo.InvariantCulture), d.Property, e, h);
            return false;
        }

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            // Names as HF's BertSelfAttention; PyTorch's nn.Linear default init (a checkpoint usually replaces it).
            int e = AttentionArgs.Of(l).Embed;
            string bound = $"1f / global::System.MathF.Sqrt({e})";
            foreach (var part in s_parts)
            {
                add(part + ".weight", new[] { e, e }, "Weight", $"Uniform({bound})");
                add(part + ".bias", new[] { e }, "Bias", $"Uniform({bound})");
            }
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = AttentionArgs.Of(l);
            return $"new {Runtime}SelfAttention(_store, {stateName}, {a.Embed}, {a.Heads}, {FloatLiteral(a.Dropout)})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = AttentionArgs.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            if (shape.Length != 2) { walker.Rank(a.Invocation, $"{a.Who} (SelfAttention)", "[T, E] (a sequence of feature vectors)", shape); return -1; }
            if (shape[1] == Shapes.Sequence) { walker.Sequence(a.Invocation, $"{a.Who} (SelfAttention)", "its features must be a fixed size", shape); return -1; }
            if (shape[1] != i.Embed)
            {
                if (!p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("embed"), ForwardWalker.Int(shape[1]), a.Who, $"{i.Embed} features (SelfAttention({i.Embed}, {i.Heads}))", walker.Producer(a.Input), walker.FeatureText(a.Input, shape), walker.InputText, "")) return -1;
                if (shape[1] % i.Heads != 0) p.FixIsNotEnough(); // the fixed width would not split into the heads
            }
            return p.AddOp(OpKind.SelfAttention, a.Input, -1, a.Layer.Layer, shape, shape, Array.Empty<int>(), a.Spec.Real, a.Who);
        }

        private static int[] Probabilities(NetworkSpec s, OpSpec op) => new[] { AttentionArgs.Of(s.Layers[op.Layer]).Heads, op.InShape[0], op.InShape[0] };

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op)
        {
            // The projections and the [H, T, T] probabilities (+ their dropout mask).
            foreach (var part in new[] { "aq", "ak", "av" }) regions.Add($"{part}{op.Id}", op.OutShape);
            regions.Add($"p{op.Id}", Probabilities(s, op));
            if (AttentionArgs.Of(s.Layers[op.Layer]).Dropout > 0) regions.Add($"dm{op.Id}", Probabilities(s, op));
        }

        public override void SharedRegions(RegionBuilder regions, NetworkSpec s, IReadOnlyList<OpSpec> ops)
        {
            // One region of each projection gradient for all attention ops, sized for the widest (bert-base saves
            // 12 layers × 3 × T·768 floats per sample).
            var widest = ops.OrderByDescending(o => Shapes.MaxSize(s, o.OutShape)).First();
            foreach (var part in new[] { "gq", "gk", "gv" }) regions.Add(part, widest.OutShape);
        }

        public override string? ScratchSize(NetworkSpec s, OpSpec op) =>
            $"{Kernels}AttentionKernels.ScratchSize({(op.InShape[0] == Shapes.Sequence ? s.MaxSequence : op.InShape[0])})";

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = AttentionArgs.Of(c.Layer(op));
            string x = c.Value(op.Input);
            foreach (var (region, part) in new[] { ("aq", "query"), ("ak", "key"), ("av", "value") })
                c.Line($"{Kernels}LinearKernels.ForwardBias({region}{op.Id}, {x}, {c.Read(op, part + ".weight")}, {c.Read(op, part + ".bias")}, {c.Rows(op)}, {a.Embed}, {a.Embed});");
            bool drop = c.Training && a.Dropout > 0;
            if (drop) c.Line($"{Kernels}DropoutKernels.FillMask(dm{op.Id}, {FloatLiteral(a.Dropout)}, _rng);");
            c.Line($"{Kernels}AttentionKernels.Forward({c.Output(op)}, p{op.Id}, aq{op.Id}, ak{op.Id}, av{op.Id}, {(c.IsSequence ? "mask" : "default")}, {(drop ? $"dm{op.Id}" : "default")}, batch, {Shapes.Dim(op.InShape[0])}, {a.Heads}, {a.HeadSize}, ws.Scratch.Span);");
        }

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var a = AttentionArgs.Of(c.Layer(op));
            string rows = c.Rows(op), n = $"{rows} * {a.Embed}";
            c.Line($"var dq = gq.Slice(0, {n}); var dk = gk.Slice(0, {n}); var dv = gv.Slice(0, {n});");
            c.Line($"{Kernels}AttentionKernels.Backward(dq, dk, dv, g{op.Id}, p{op.Id}, aq{op.Id}, ak{op.Id}, av{op.Id}, {(a.Dropout > 0 ? $"dm{op.Id}" : "default")}, batch, {Shapes.Dim(op.InShape[0])}, {a.Heads}, {a.HeadSize}, ws.Scratch.Span, accumulate: false);");
            bool first = true;
            foreach (var (gradient, part) in new[] { ("dq", "query"), ("dk", "key"), ("dv", "value") })
            {
                // The query projection's dx writes the input's gradient when nothing else contributes to it.
                c.Line($"{Kernels}LinearKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, part + ".weight")}, {gradient}, {c.Value(op.Input)}, {c.Read(op, part + ".weight")}, {rows}, {a.Embed}, {a.Embed}{(first && c.WritesInputGradient(op) ? ", accumulateDx: false" : "")});");
                c.Line($"{Kernels}LinearKernels.BiasBackward({c.Gradient(op, part + ".bias")}, {gradient}, {rows}, {a.Embed});");
                first = false;
            }
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The device's names for what forward saves (the query, key and value projections one after another, the
        /// probabilities and, with dropout, the dropped ones).</summary>
        private static (string Qkv, string Probs, string Drop) GpuSaved(GpuContext c, OpSpec op)
        {
            long e = Shapes.MaxSize(c.Spec, op.OutShape), probs = Shapes.MaxSize(c.Spec, Probabilities(c.Spec, op));
            return (c.Region($"_qkv{op.Id}", 3 * e), c.Region($"_p{op.Id}", probs),
                AttentionArgs.Of(c.Layer(op)).Dropout > 0 ? c.Region($"_pd{op.Id}", probs) : "default");
        }

        /// <summary>The three projections' parameters as <c>ProjectionsForward/Backward</c> take them: the view from the
        /// query's tensor through the value's, and the spacing between them (they are declared one after another).</summary>
        private static (string Weights, string WeightSpacing, string Biases, string BiasSpacing) Projections(GpuContext c, OpSpec op, string access)
        {
            string P(string part, string kind) => Projection(c, op, part, kind);
            return ($"{access}({P("query", "weight")}, {P("value", "weight")})", $"Spacing({P("query", "weight")}, {P("key", "weight")}, {P("value", "weight")})",
                $"{access}({P("query", "bias")}, {P("value", "bias")})", $"Spacing({P("query", "bias")}, {P("key", "bias")}, {P("value", "bias")})");
        }

        /// <summary>The twin's name for a projection's tensor (<paramref name="part"/> query, key or value; weight or bias).</summary>
        private static string Projection(GpuContext c, OpSpec op, string part, string kind) => $"_net.{c.Param(op, part + "." + kind).Field}";

        /// <summary>The query, key and value of a block of rows·E floats each.</summary>
        private static string Parts(string stacked, string block) => $"Part({stacked}, 0, {block}), Part({stacked}, 1, {block}), Part({stacked}, 2, {block})";

        /// <summary>The query, key and value projections in two launches (one batched GEMM sharing the input, one pass
        /// adding the biases), then the attention kernels; the padding mask is the batch's, the dropout mask drawn under
        /// the step's key with the op id as its stream.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var a = AttentionArgs.Of(c.Layer(op));
            var saved = GpuSaved(c, op);
            var p = Projections(c, op, "Value");
            string rows = c.Rows(op);
            c.Launch($"K.ProjectionsForward({saved.Qkv}, {c.Value(op.Input)}, {p.Weights}, {p.WeightSpacing}, {p.Biases}, {p.BiasSpacing}, 3, {rows}, {a.Embed}, {a.Embed});", 2);
            string mask = c.Spec.MaxSequence > 0 ? "Mask, true" : "default, false";
            c.Launch($"K.AttentionForward({c.Output(op)}, {saved.Probs}, {saved.Drop}, {Parts(saved.Qkv, $"{rows} * {a.Embed}")}, {mask}, batch, {Shapes.Dim(op.InShape[0])}, {a.Heads}, {a.HeadSize}, {FloatLiteral(a.Dropout)}, training, StepKey, {op.Id});", 3);
        }

        /// <summary>dq, dk, dv from the attention kernels into one region for all attention ops (sized for the widest),
        /// then the projections' weight and bias gradients (a launch each for the three, none for a frozen kind) and the
        /// input's (a GEMM each).</summary>
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            var a = AttentionArgs.Of(c.Layer(op));
            var saved = GpuSaved(c, op);
            long widest = c.Spec.Ops.Where(o => o.Kind == OpKind.SelfAttention).Max(o => Shapes.MaxSize(c.Spec, o.OutShape));
            string dqkv = c.Region("_gqkv", 3 * widest), rows = c.Rows(op), block = $"{rows} * {a.Embed}";
            int longest = op.InShape[0] == Shapes.Sequence ? c.Spec.MaxSequence : op.InShape[0];
            string scratch = c.Scratch($"{Gpu}GpuKernels.AttentionScratch(batch, {a.Heads}, {longest})");
            c.Launch($"K.AttentionBackward({Parts(dqkv, block)}, {c.Gradient(op.Id)}, {saved.Probs}, {saved.Drop}, {Parts(saved.Qkv, block)}, {scratch}, batch, {Shapes.Dim(op.InShape[0])}, {a.Heads}, {a.HeadSize}, {FloatLiteral(a.Dropout)});", 5);
            var values = Projections(c, op, "Value");
            var gradients = Projections(c, op, "Gradient");
            bool dx = !c.InputIsData(op);
            // Which projections' weights and biases train: the kernel leaves a frozen one's gradient alone.
            string Trained(string kind) => $"Trained({Projection(c, op, "query", kind)}, {Projection(c, op, "key", kind)}, {Projection(c, op, "value", kind)})";
            c.Launch($"K.ProjectionsBackward({c.GradientIfNeeded(op.Input)}, {gradients.Weights}, {gradients.Biases}, {dqkv}, {c.Value(op.Input)}, {values.Weights}, {values.WeightSpacing}, {values.BiasSpacing}, 3, {rows}, {a.Embed}, {a.Embed}, " +
                $"trainedWeights: {Trained("weight")}, trainedBiases: {Trained("bias")});", dx ? 5 : 2);
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var a = AttentionArgs.Of(c.Layer(op));
            int e = a.Embed, heads = a.Heads, d = a.HeadSize;
            string v = $"v{op.Id}", x = c.Value(op.Input);
            foreach (var part in s_parts)
            {
                c.Line($"g.Node(\"MatMul\", new[] {{ {x}, {c.TransposedInitializer(op, part + ".weight", e, e)} }}, \"{v}_{part}_raw\");");
                c.Line($"g.Node(\"Add\", new[] {{ \"{v}_{part}_raw\", {c.Initializer(op, part + ".bias")} }}, \"{v}_{part}\");");
                c.Line($"g.Node(\"Reshape\", new[] {{ \"{v}_{part}\", g.Int64(true, 0, 0, {IntLiteral(heads)}, {IntLiteral(d)}) }}, \"{v}_{part}_heads\");");
                string perm = part == "key" ? "0, 2, 3, 1" : "0, 2, 1, 3";
                c.Line($"g.Node(\"Transpose\", new[] {{ \"{v}_{part}_heads\" }}, \"{v}_{part}_t\", (\"perm\", new int[] {{ {perm} }}));");
            }
            c.Line($"g.Node(\"MatMul\", new[] {{ \"{v}_query_t\", \"{v}_key_t\" }}, \"{v}_scores_raw\");");
            c.Line($"g.Node(\"Mul\", new[] {{ \"{v}_scores_raw\", g.Scalar(1f / global::System.MathF.Sqrt({IntLiteral(d)})) }}, \"{v}_scores_scaled\");");
            string scores = c.Masked ? $"\"{v}_scores\"" : $"\"{v}_scores_scaled\"";
            if (c.Masked) c.Line($"g.Node(\"Add\", new[] {{ \"{v}_scores_scaled\", \"mask_add\" }}, {scores});");
            c.Line($"g.Node(\"Softmax\", new[] {{ {scores} }}, \"{v}_probs\", (\"axis\", -1));");
            c.Line($"g.Node(\"MatMul\", new[] {{ \"{v}_probs\", \"{v}_value_t\" }}, \"{v}_context_heads\");");
            c.Line($"g.Node(\"Transpose\", new[] {{ \"{v}_context_heads\" }}, \"{v}_context_t\", (\"perm\", new int[] {{ 0, 2, 1, 3 }}));");
            c.Line($"g.Node(\"Reshape\", new[] {{ \"{v}_context_t\", g.Int64(true, 0, 0, {IntLiteral(e)}) }}, {c.Output(op)});");
        }
    }
}
