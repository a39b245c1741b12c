using System;
using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>[Upsample(scaleFactor, mode)]</c> / <c>x.Upsample(s[, mode])</c> (nn.Upsample with an integer scale_factor):
    /// [C, H, W] → [C, H·s, W·s], nearest (PyTorch's default) or bilinear with align_corners=False. The op's ints are
    /// (factor, mode: 0 nearest, 1 bilinear).
    /// </summary>
    internal sealed class UpsampleOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("scaleFactor"), Argument.Int("mode", ArgumentRule.NonNegative) };

        public override OpKind Kind => OpKind.Upsample;
        public override string Name => "Upsample";
        public override LayerKind? Layer => LayerKind.Upsample;
        public override string? Method => "Upsample";
        public override string? MethodUsage => "Upsample(s[, mode])";
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override string Construct(LayerSpec l, string stateName) =>
            $"new {Runtime}Upsample({l.Ints[0]}, (global::Compiled.Nets.UpsampleMode){l.Ints[1]})";

        public override int Apply(ForwardWalker walker, LayerApplication a) =>
            Add(walker, a.Invocation, $"{a.Who} (Upsample)", a.Input, a.Shape, a.Spec.Ints[0], a.Spec.Ints[1], a.Layer.Layer);

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (!walker.ConstantInts(invocation, new[] { "scaleFactor", "mode" }, out var values)) return -1;
            if (values[0] is not int factor || factor <= 0)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), "Upsample", "the scale factor must be a positive integer constant");
                return -1;
            }
            return Add(walker, invocation, "Upsample", x, shape, factor, values[1] ?? 0, -1);
        }

        private static int Add(ForwardWalker walker, InvocationExpressionSyntax at, string who, int x, int[] shape, int factor, int mode, int layer)
        {
            if (shape.Length != 3) { walker.Rank(at, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(at, who, "upsampling needs fixed [C, H, W] sizes", shape); return -1; }
            if (mode > 1) { walker.Unsupported(at, "the mode is UpsampleMode.Nearest or UpsampleMode.Bilinear"); return -1; }
            return walker.Parser.AddOp(OpKind.Upsample, x, -1, layer, shape, new[] { shape[0], shape[1] * factor, shape[2] * factor }, new[] { factor, mode }, 0, who);
        }

        private static string Call(OpSpec op, string direction, string first, string second) =>
            $"{Kernels}UpsampleKernels.{(op.Ints[1] == 1 ? "Bilinear" : "Nearest")}{direction}({first}, {second}, batch * {op.InShape[0]}, {op.InShape[1]}, {op.InShape[2]}, {op.Ints[0]});";

        public override void EmitForward(CpuContext c, OpSpec op) => c.Line(Call(op, "Forward", c.Output(op), c.Value(op.Input)));

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) " + Call(op, "Backward", $"g{op.Input}", $"g{op.Id}"));
        }

        public override bool OnGpu => true;

        private static string GpuSizes(OpSpec op) => $"batch * {op.InShape[0]}, {op.InShape[1]}, {op.InShape[2]}, {op.Ints[0]}, bilinear: {(op.Ints[1] == 1 ? "true" : "false")}";

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.UpsampleForward({c.Output(op)}, {c.Value(op.Input)}, {GpuSizes(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.UpsampleBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {GpuSizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            // Resize with PyTorch's sampling: nearest as floor(o / s) (asymmetric), bilinear at half pixels.
            string s = Helpers.SourceWriter.FloatLiteral(op.Ints[0]);
            string mode = op.Ints[1] == 1 ? "(\"mode\", \"linear\"), (\"coordinate_transformation_mode\", \"half_pixel\")"
                : "(\"mode\", \"nearest\"), (\"coordinate_transformation_mode\", \"asymmetric\"), (\"nearest_mode\", \"floor\")";
            c.Line($"g.Node(\"Resize\", new[] {{ {c.Value(op.Input)}, \"\", g.Initializer(\"v{op.Id}.scales\", new float[] {{ 1f, 1f, {s}, {s} }}, 4) }}, {c.Output(op)}, {mode});");
        }
    }
}
