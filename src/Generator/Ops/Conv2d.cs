using System.Collections.Generic;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[Conv2d(inChannels, outChannels, kernel, stride, padding, dilation, bias)]</c>, read from a layer's arguments.</summary>
    internal readonly record struct Conv2dArgs(int In, int Out, int Kernel, int Stride, int Padding, int Dilation, bool Bias)
    {
        public static Conv2dArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Ints[2], l.Ints[3], l.Ints[4], l.Ints[5], l.Bias);
    }

    /// <summary>
    /// 2-D convolution, as nn.Conv2d (square kernel, symmetric stride/padding/dilation). The kernel adds the bias as it
    /// lays its output out; Winograd-transformed weights are cached per op while the weights are unchanged.
    /// </summary>
    internal sealed class Conv2dOp : OpDefinition
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("inChannels"), Argument.Int("outChannels"), Argument.Int("kernel"), Argument.Int("stride", fallback: 1),
            Argument.Int("padding", ArgumentRule.NonNegative), Argument.Int("dilation", fallback: 1), Argument.Bias,
        };

        public override OpKind Kind => OpKind.Conv2d;
        public override string Name => "Conv2d";
        public override LayerKind? Layer => LayerKind.Conv2d;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override BiasPlacement Bias => BiasPlacement.InKernel;
        public override bool CanWriteInputGradient => true;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            var a = Conv2dArgs.Of(l);
            string bound = $"1f / global::System.MathF.Sqrt({a.In * a.Kernel * a.Kernel})";
            add("weight", new[] { a.Out, a.In, a.Kernel, a.Kernel }, "Weight", $"Uniform({bound})");
            if (a.Bias) add("bias", new[] { a.Out }, "Bias", $"Uniform({bound})");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Conv2dArgs.Of(l);
            return $"new {Runtime}Conv2d(_store, {stateName}, {a.In}, {a.Out}, {a.Kernel}, {a.Stride}, {a.Padding}, {a.Dilation}, {(a.Bias ? "true" : "false")})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = Conv2dArgs.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            string who = $"{a.Who} (Conv2d)";
            if (shape.Length != 3) { walker.Rank(a.Invocation, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, "convolution needs fixed [C, H, W] sizes", shape); return -1; }
            if (shape[0] != i.In)
            {
                if (!p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inChannels"), ForwardWalker.Int(shape[0]), a.Who, $"{i.In} input channels (Conv2d({i.In}, {i.Out}))",
                    walker.Producer(a.Input), $"{shape[0]} channels ({NetworkParser.Shape(shape)})", walker.InputText, "")) return -1;
            }
            int span = i.Dilation * (i.Kernel - 1) + 1;
            int oh = (shape[1] + 2 * i.Padding - span) / i.Stride + 1, ow = (shape[2] + 2 * i.Padding - span) / i.Stride + 1;
            if (shape[1] + 2 * i.Padding - span < 0 || shape[2] + 2 * i.Padding - span < 0 || oh <= 0 || ow <= 0)
            {
                p.ReportPublic(DiagnosticDescriptors.WindowTooLarge, a.Args.Location("kernel"), who, $"kernel {i.Kernel}, stride {i.Stride}, padding {i.Padding}, dilation {i.Dilation}", NetworkParser.Shape(shape), "empty");
                return -1;
            }
            return p.AddOp(OpKind.Conv2d, a.Input, -1, a.Layer.Layer, shape, new[] { i.Out, oh, ow }, System.Array.Empty<int>(), 0, a.Who);
        }

        public override string? ScratchSize(NetworkSpec s, OpSpec op) => $"{Kernels}Conv2dKernels.ScratchSize({Geometry(s, op, "1")})";

        /// <summary>The kernels' geometry for <paramref name="batch"/> samples (emitted text).</summary>
        public static string Geometry(NetworkSpec s, OpSpec op, string batch)
        {
            var i = Conv2dArgs.Of(s.Layers[op.Layer]);
            var x = op.InShape;
            return $"new {Kernels}Conv2dGeometry({batch}, {x[0]}, {x[1]}, {x[2]}, {i.Out}, {i.Kernel}, {i.Kernel}, {i.Stride}, {i.Stride}, {i.Padding}, {i.Padding}, {i.Dilation}, {i.Dilation})";
        }

        /// <summary>The field holding a convolution's cache of Winograd-transformed weights.</summary>
        public static string WeightCache(OpSpec op) => $"_weights{op.Id}";

        public override void EmitFields(CpuContext c, IReadOnlyList<OpSpec> ops)
        {
            c.Line("// Each convolution's Winograd-transformed weights, reused while the weights are unchanged (checked on every call).");
            foreach (var o in ops) c.Line($"private readonly {Kernels}Conv2dWeightCache {WeightCache(o)} = new();");
        }

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            string call = $"{Kernels}Conv2dKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}";
            c.Line(c.Layer(op).Bias
                ? $"{call}, {c.Read(op, "bias")}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, {WeightCache(op)}); // bias added in the kernel's output pass"
                : $"{call}, default, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, {WeightCache(op)});");
        }

        public override void EmitBackward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}Conv2dKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, g{op.Id}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, accumulateDx: {(c.WritesInputGradient(op) ? "false" : "true")}, {WeightCache(op)});");

        public override bool OnGpu => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.Conv2dForward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {(c.Layer(op).Bias ? c.Read(op, "bias") : "default")}, {Geometry(c.Spec, op, "batch")}, {c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({Geometry(c.Spec, op, "batch")})")}); // im2col, GEMM, bias + layout", 3);

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            bool bias = c.Layer(op).Bias, dx = !c.InputIsData(op);
            c.Launch($"K.Conv2dBackward({(dx ? c.Gradient(op.Input) : "default")}, {c.ParameterGradient(op, "weight")}, {(bias ? c.ParameterGradient(op, "bias") : "default")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, {c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({Geometry(c.Spec, op, "batch")})")});",
                3 + (bias ? 1 : 0) + (dx ? 2 : 0));
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var i = Conv2dArgs.Of(c.Layer(op));
            string b = i.Bias ? ", " + c.Initializer(op, "bias") : "";
            c.Line($"g.Node(\"Conv\", new[] {{ {c.Value(op.Input)}, {c.Initializer(op, "weight")}{b} }}, {c.Output(op)}, (\"kernel_shape\", {OnnxContext.Ints(i.Kernel, i.Kernel)}), (\"strides\", {OnnxContext.Ints(i.Stride, i.Stride)}), (\"pads\", {OnnxContext.Ints(i.Padding, i.Padding, i.Padding, i.Padding)}), (\"dilations\", {OnnxContext.Ints(i.Dilation, i.Dilation)}));");
        }
    }
}
