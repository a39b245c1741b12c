using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[Linear(inFeatures, outFeatures, bias)]</c>, read from a layer's arguments.</summary>
    internal readonly record struct LinearArgs(int In, int Out, bool Bias)
    {
        public static LinearArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Bias);
    }

    /// <summary>
    /// Linear over the last dimension (y = x Wᵀ + b), as nn.Linear. The bias is the first stage of the fused chain
    /// after the GEMM; backward is two GEMMs (dx, dW) and the bias sum in the chain.
    /// </summary>
    internal sealed class LinearOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("inFeatures"), Argument.Int("outFeatures"), Argument.Bias };

        public override OpKind Kind => OpKind.Linear;
        public override string Name => "Linear";
        public override LayerKind? Layer => LayerKind.Linear;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override BiasPlacement Bias => BiasPlacement.InChain;
        public override bool CanWriteInputGradient => true;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            var a = LinearArgs.Of(l);
            string bound = $"1f / global::System.MathF.Sqrt({a.In})";
            add("weight", new[] { a.Out, a.In }, "Weight", $"Uniform({bound})");
            if (a.Bias) add("bias", new[] { a.Out }, "Bias", $"Uniform({bound})");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = LinearArgs.Of(l);
            return $"new {Runtime}Linear(_store, {stateName}, {a.In}, {a.Out}, {(a.Bias ? "true" : "false")})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var args = LinearArgs.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            if (shape.Length < 1) { walker.Rank(a.Invocation, $"{a.Who} (Linear)", "[..., features]", shape); return -1; }
            if (shape[shape.Length - 1] == Shapes.Sequence) { walker.Sequence(a.Invocation, $"{a.Who} (Linear)", "its input features must be a fixed size", shape); return -1; }
            if (shape[shape.Length - 1] != args.In)
            {
                string expects = $"{args.In} input features (Linear({args.In}, {args.Out}))";
                if (shape.Length > 1 && !Shapes.HasSequence(shape))
                {
                    // A map fed straight to a Linear: the forgotten Flatten(). Changing the size to the map's width
                    // would build but is not what was meant, so no fix is offered.
                    p.ReportPublic(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inFeatures"), a.Who, expects, walker.Producer(a.Input), NetworkParser.ShapeBracket(shape), walker.InputText,
                        $": a Linear reads the last dimension ({shape[shape.Length - 1]}); add .Flatten() before it to feed {NetworkParser.Shape(shape)} = {shape.Aggregate(1L, (m, n) => m * n)} features");
                    return -1;
                }
                if (!p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inFeatures"), walker.FeatureFix(a.Input, shape), a.Who, expects,
                    walker.Producer(a.Input), walker.FeatureText(a.Input, shape), walker.InputText, "")) return -1;
            }
            var outShape = (int[])shape.Clone(); outShape[outShape.Length - 1] = args.Out;
            return p.AddOp(OpKind.Linear, a.Input, -1, a.Layer.Layer, shape, outShape, System.Array.Empty<int>(), 0, a.Who);
        }

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = LinearArgs.Of(c.Layer(op));
            var weight = c.Param(op, "weight");
            string rows = c.Rows(op);
            if (c.Training)
                c.Line($"{Kernels}LinearKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {CpuContext.Read(weight)}, {rows}, {a.In}, {a.Out});");
            else if (c.IsReluOutput(op.Input) && a.Out % 16 == 0 && (long)a.In * a.Out >= 1 << 16)
            {
                // A ReLU's output is mostly zeros: small batches read a read-only store's transposed copy and skip the
                // weights of zero inputs (LinearKernels.UsesTransposed decides at run time; these sizes can qualify).
                c.Line($"{Kernels}LinearKernels.ForwardSparseInput({c.Output(op)}, {c.Value(op.Input)}, {CpuContext.Read(weight)},");
                c.Line($"    {Kernels}LinearKernels.UsesTransposed({rows}, {a.In}, {a.Out}) ? _store.TransposedValue({weight.Field}) : default, {rows}, {a.In}, {a.Out});");
            }
            else
                // Inference also offers the weights' bfloat16 copy (empty unless the store is read-only for bfloat16).
                c.Line($"{Kernels}LinearKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {CpuContext.Read(weight)}, _store.BFloat16Value({weight.Field}), {rows}, {a.In}, {a.Out});");
        }

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var a = LinearArgs.Of(c.Layer(op));
            var weight = c.Param(op, "weight");
            string writeDx = c.WritesInputGradient(op) ? ", accumulateDx: false" : "";
            string writeDw = c.Plan.WrittenWeights.Contains(weight.Field) ? ", accumulateDw: accumulate" : "";
            c.Line($"{Kernels}LinearKernels.Backward({c.InputGradient(op)}, {CpuContext.Gradient(weight)}, g{op.Id}, {c.Value(op.Input)}, {CpuContext.Read(weight)}, {c.Rows(op)}, {a.In}, {a.Out}{writeDx}{writeDw});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>y = x·Wᵀ as one GEMM; the bias is the first stage of the fused chain that follows.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var a = LinearArgs.Of(c.Layer(op));
            c.Launch($"K.Gemm(false, true, {c.Rows(op)}, {a.Out}, {a.In}, 1f, {c.Value(op.Input)}, {a.In}, {c.Read(op, "weight")}, {a.In}, 0f, {c.Output(op)}, {a.Out});");
        }

        /// <summary>dW += gᵀ·x (unless W is frozen) and dx += g·W (the bias gradient is summed by the chain's backward).</summary>
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            var a = LinearArgs.Of(c.Layer(op));
            c.Launch($"if ({c.Trains(op, "weight")}) K.Gemm(true, false, {a.Out}, {a.In}, {c.Rows(op)}, 1f, {c.Gradient(op.Id)}, {a.Out}, {c.Value(op.Input)}, {a.In}, 1f, {c.TrainedGradient(op, "weight")}, {a.In});");
            if (!c.InputIsData(op))
                c.Launch($"if (n{op.Input}) K.Gemm(false, false, {c.Rows(op)}, {a.In}, {a.Out}, 1f, {c.Gradient(op.Id)}, {a.Out}, {c.Read(op, "weight")}, {a.In}, 1f, {c.Gradient(op.Input)}, {a.In});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var a = LinearArgs.Of(c.Layer(op));
            string x = c.Value(op.Input), y = c.Output(op);
            if (op.InShape.Count == 1)
            {
                string b = a.Bias ? ", " + c.Initializer(op, "bias") : "";
                c.Line($"g.Node(\"Gemm\", new[] {{ {x}, {c.Initializer(op, "weight")}{b} }}, {y}, (\"transB\", 1));");
                return;
            }
            // Over the last dimension of a larger tensor: MatMul by Wᵀ, then the bias.
            string wt = c.TransposedInitializer(op, "weight", a.Out, a.In);
            if (a.Bias)
            {
                c.Line($"g.Node(\"MatMul\", new[] {{ {x}, {wt} }}, \"v{op.Id}_matmul\");");
                c.Line($"g.Node(\"Add\", new[] {{ \"v{op.Id}_matmul\", {c.Initializer(op, "bias")} }}, {y});");
            }
            else c.Line($"g.Node(\"MatMul\", new[] {{ {x}, {wt} }}, {y});");
        }
    }
}
