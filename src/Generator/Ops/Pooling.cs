using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>A pool's window: kernel, stride (the kernel when not given) and padding, from its op's integers.</summary>
    internal readonly record struct Pool2dArgs(int Kernel, int Stride, int Padding)
    {
        public static Pool2dArgs Of(OpSpec op) => new(op.Ints[0], op.Ints[1], op.Ints[2]);
        public static Pool2dArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Ints[2]);
    }

    /// <summary>
    /// MaxPool2d and AvgPool2d, as layers (<c>[MaxPool2d(2)]</c>) or calls (<c>x.MaxPool2d(2)</c>). Max-pooling saves
    /// its argmax for backward and takes part in three fusions the planner decides (see <see cref="Planner"/>):
    /// with the convolution before it, with a ReLU after it, and summing that convolution's bias gradient.
    /// </summary>
    internal class Pool2dOp : OpDefinition
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("kernel"), Argument.Int("stride"), Argument.Int("padding", ArgumentRule.NonNegative),
        };

        private readonly OpKind _kind;
        private readonly LayerKind _layer;

        protected Pool2dOp(OpKind kind, LayerKind layer) { _kind = kind; _layer = layer; }

        public override OpKind Kind => _kind;
        public override string Name => _layer.ToString();
        public override LayerKind? Layer => _layer;
        public override string? Method => _layer.ToString();
        public override string? MethodUsage => $"{Method}(k[, stride, padding])";
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override void Normalize(int[] ints) { if (ints[1] == 0) ints[1] = ints[0]; }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Pool2dArgs.Of(l);
            return $"new {Runtime}{_layer}({a.Kernel}, {a.Stride}, {a.Padding})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = Pool2dArgs.Of(a.Spec);
            return Pool(walker, a.Invocation, $"{a.Who} ({_layer})", a.Input, a.Shape, i, a.Args.Location("kernel"));
        }

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            string method = Method!;
            if (!walker.ConstantInts(invocation, new[] { "kernel", "stride", "padding" }, out var values)) return -1;
            int k = values[0] ?? 0, s = values[1] ?? 0, pad = values[2] ?? 0;
            if (values[0] is null) { walker.Unsupported(invocation, $"{method} needs a constant kernel size"); return -1; }
            if (k <= 0 || s < 0 || pad < 0)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation), method, "kernel must be positive, stride and padding not negative");
                return -1;
            }
            return Pool(walker, invocation, method, x, shape, new Pool2dArgs(k, s == 0 ? k : s, pad), ForwardWalker.Location(invocation.ArgumentList));
        }

        private int Pool(ForwardWalker walker, SyntaxNode at, string who, int x, int[] shape, Pool2dArgs a, LocationInfo? location)
        {
            if (shape.Length != 3) { walker.Rank(at, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(at, who, "pooling needs fixed [C, H, W] sizes", shape); return -1; }
            // As PyTorch: more padding would leave windows wholly in the padding (a max of nothing, an average of zeros).
            if (2L * a.Padding > a.Kernel)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, location, who, $"padding {a.Padding} is more than half the kernel {a.Kernel}; at most {a.Kernel / 2}");
                return -1;
            }
            int oh = (shape[1] + 2 * a.Padding - a.Kernel) / a.Stride + 1, ow = (shape[2] + 2 * a.Padding - a.Kernel) / a.Stride + 1;
            if (shape[1] + 2 * a.Padding < a.Kernel || shape[2] + 2 * a.Padding < a.Kernel || oh <= 0 || ow <= 0)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.WindowTooLarge, location, who, $"kernel {a.Kernel}, stride {a.Stride}, padding {a.Padding}", NetworkParser.Shape(shape), "empty");
                return -1;
            }
            return walker.Parser.AddOp(_kind, x, -1, -1, shape, new[] { shape[0], oh, ow }, new[] { a.Kernel, a.Stride, a.Padding }, 0, who);
        }

        /// <summary>The kernels' geometry (emitted text).</summary>
        public static string Geometry(OpSpec op)
        {
            var a = Pool2dArgs.Of(op);
            return $"new {Kernels}Pool2dGeometry(batch, {op.InShape[0]}, {op.InShape[1]}, {op.InShape[2]}, {a.Kernel}, {a.Kernel}, {a.Stride}, {a.Stride}, {a.Padding}, {a.Padding})";
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var a = Pool2dArgs.Of(op);
            bool max = _kind == OpKind.MaxPool2d;
            string extra = max ? "" : ", (\"count_include_pad\", 1)";
            c.Line($"g.Node(\"{(max ? "MaxPool" : "AveragePool")}\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"kernel_shape\", {OnnxContext.Ints(a.Kernel, a.Kernel)}), (\"strides\", {OnnxContext.Ints(a.Stride, a.Stride)}), (\"pads\", {OnnxContext.Ints(a.Padding, a.Padding, a.Padding, a.Padding)}){extra});");
        }
    }

    internal sealed class MaxPool2dOp : Pool2dOp
    {
        public MaxPool2dOp() : base(OpKind.MaxPool2d, LayerKind.MaxPool2d) { }

        public override bool CanWriteInputGradient => true;

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op) => regions.AddInts($"a{op.Id}", op.OutShape);

        public override bool OnGpu => true;

        /// <summary>The ReLU a max-pool runs in its own kernel (the plan's pool + ReLU): its value, or -1.</summary>
        private static int FusedRelu(GpuContext c, OpSpec op) =>
            c.Plan.PoolRelu.Contains(op.Id) ? c.Plan.Units.First(u => u.Primary?.Id == op.Id).Stages[0].Value : -1;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            string argmax = c.IntRegion($"_a{op.Id}", Shapes.Product(op.OutShape));
            int relu = FusedRelu(c, op);
            if (c.Plan.ConvolutionOf(op.Id) is int id)
            {
                var conv = c.Spec.Ops[id];
                string geometry = Conv2dOp.Geometry(c.Spec, conv, "batch");
                c.Launch($"K.Conv2dMaxPool2dForward({(relu < 0 ? c.Output(op) : c.Value(relu))}, {argmax}, {c.Value(conv.Input)}, {c.Read(conv, "weight")}, {(c.Layer(conv).Bias ? c.Read(conv, "bias") : "default")}, " +
                    $"{geometry}, {Geometry(op)}, {c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({geometry})")}, relu: {(relu < 0 ? "false" : "true")}); // {conv.Label} (im2col, GEMM) and the pool reading its GEMM's output{(relu < 0 ? "" : ", the ReLU after it")}", 3);
                return;
            }
            c.Launch(relu < 0
                ? $"K.MaxPool2dForward({c.Output(op)}, {argmax}, {c.Value(op.Input)}, {Geometry(op)});"
                : $"K.MaxPool2dReluForward({c.Value(relu)}, {argmax}, {c.Value(op.Input)}, {Geometry(op)}); // and the ReLU after it");
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            int relu = FusedRelu(c, op);
            if (c.Plan.ConvolutionOf(op.Id) is int id)
            {
                var conv = c.Spec.Ops[id];
                string geometry = Conv2dOp.Geometry(c.Spec, conv, "batch");
                bool dx = !c.InputIsData(conv);
                c.Launch($"K.Conv2dMaxPool2dBackward({c.GradientIfNeeded(conv.Input)}, {c.ParameterGradient(conv, "weight")}, {(c.Layer(conv).Bias ? c.ParameterGradient(conv, "bias") : "default")}, " +
                    $"{(relu < 0 ? c.Gradient(op.Id) : c.Gradient(relu))}, {(relu < 0 ? "default" : c.Value(relu))}, _a{op.Id}, {c.Value(conv.Input)}, {c.Read(conv, "weight")}, {geometry}, {Geometry(op)}, " +
                    $"{c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({geometry})")}, relu: {(relu < 0 ? "false" : "true")}); // into {conv.Label}'s gradient layout, its bias summed; then its weights{(dx ? " and input" : "")}",
                    3 + (dx ? 2 : 0));
                return;
            }
            if (c.InputIsData(op)) return;
            c.Launch(relu < 0
                ? $"K.MaxPool2dBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, _a{op.Id}, {Geometry(op)});"
                : $"K.MaxPool2dReluBackward({c.Gradient(op.Input)}, {c.Gradient(relu)}, {c.Value(relu)}, _a{op.Id}, {Geometry(op)}); // through the ReLU after it");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}PoolingKernels.MaxPool2dForward({c.Output(op)}, {(c.Training ? $"a{op.Id}" : "default")}, {c.Value(op.Input)}, {Geometry(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (c.InputIsData(op)) return;
            bool write = c.WritesInputGradient(op);
            string tail = c.Plan.PoolBiasOf(op.Id) is not null
                ? $", accumulate: {(write ? "false" : "true")}, reluOutput: default{BiasGradientArgument(c, op)}"
                : write ? ", accumulate: false" : "";
            c.Line($"if (n{op.Input}) {Kernels}PoolingKernels.MaxPool2dBackward(g{op.Input}, g{op.Id}, a{op.Id}, {Geometry(op)}{tail});");
        }

        /// <summary>Conv + 2×2/2 max-pool (+ ReLU) in one kernel call: the convolution's output is only the kernel's fallback buffer.</summary>
        public static void EmitWithConvolution(CpuContext c, PlanUnit unit, OpSpec pool, OpSpec conv)
        {
            bool relu = c.Plan.PoolRelu.Contains(pool.Id);
            string pooledOut = relu ? $"v{unit.Last}" : $"v{pool.Id}";
            string bias = c.Layer(conv).Bias ? c.Read(conv, "bias") : "default";
            c.Line($"// {conv.Label} + {pool.Label}{(relu ? " + ReLU" : "")}: {Shapes.Batched(conv.InShape)} -> {Shapes.Batched(pool.OutShape)} (one kernel; {Shapes.Batched(conv.OutShape)} is only its fallback buffer)");
            c.Line($"{Kernels}Conv2dKernels.ForwardMaxPool2x2({pooledOut}, {(c.Training ? $"a{pool.Id}" : "default")}, {c.Value(conv.Input)}, {c.Read(conv, "weight")}, {bias}, {Conv2dOp.Geometry(c.Spec, conv, "batch")}, ws.Scratch.Span, {Conv2dOp.WeightCache(conv)}, v{conv.Id}, relu: {(relu ? "true" : "false")});");
        }

        /// <summary>Max-pool + ReLU in one kernel call (ReLU commutes with max).</summary>
        public static void EmitWithRelu(CpuContext c, PlanUnit unit, OpSpec pool)
        {
            c.Line($"// {pool.Label} + ReLU: {Shapes.Batched(pool.InShape)} -> {Shapes.Batched(pool.OutShape)} (one kernel)");
            c.Line($"{Kernels}PoolingKernels.MaxPool2dForward(v{unit.Last}, {(c.Training ? $"a{pool.Id}" : "default")}, {c.Value(pool.Input)}, {Geometry(pool)}, relu: true);");
        }

        /// <summary>The backward of <see cref="EmitWithRelu"/>: ReLU's mask from the fused output, then the scatter.</summary>
        public static void EmitWithReluBackward(CpuContext c, PlanUnit unit, OpSpec pool)
        {
            bool write = c.Plan.OverwrittenGradients.Contains(c.Storage(pool.Input));
            c.Line($"// {pool.Label} + ReLU backward (ReLU's mask from the fused output, then the scatter)");
            if (!c.InputIsData(pool))
                c.Line($"if (n{pool.Input}) {Kernels}PoolingKernels.MaxPool2dBackward(g{pool.Input}, g{unit.Last}, a{pool.Id}, {Geometry(pool)}, accumulate: {(write ? "false" : "true")}, reluOutput: v{unit.Last}{BiasGradientArgument(c, pool)});");
        }

        /// <summary>", biasGradient: …" when the pool's backward also sums its input convolution's bias gradient.</summary>
        private static string BiasGradientArgument(CpuContext c, OpSpec pool) =>
            c.Plan.PoolBiasOf(pool.Id) is { } conv ? $", biasGradient: {c.Gradient(c.Spec.Ops[conv], "bias")}" : "";
    }

    internal sealed class AvgPool2dOp : Pool2dOp
    {
        public AvgPool2dOp() : base(OpKind.AvgPool2d, LayerKind.AvgPool2d) { }

        public override bool OnGpu => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.AvgPool2dForward({c.Output(op)}, {c.Value(op.Input)}, {Geometry(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.AvgPool2dBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {Geometry(op)});");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}PoolingKernels.AvgPool2dForward({c.Output(op)}, {c.Value(op.Input)}, {Geometry(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}PoolingKernels.AvgPool2dBackward(g{op.Input}, g{op.Id}, {Geometry(op)});");
        }
    }

    /// <summary>
    /// AdaptiveAvgPool2d(n): [C, H, W] → [C, n, n] bin means, as nn.AdaptiveAvgPool2d (bins may overlap); n = 1 is
    /// global average pooling. ONNX: GlobalAveragePool for 1, else a MatMul by the constant bin-averaging matrix.
    /// </summary>
    internal sealed class AdaptiveAvgPool2dOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("outputSize") };

        public override OpKind Kind => OpKind.AdaptiveAvgPool2d;
        public override string Name => "AdaptiveAvgPool2d";
        public override LayerKind? Layer => LayerKind.AdaptiveAvgPool2d;
        public override string? Method => "AdaptiveAvgPool2d";
        public override string? MethodUsage => "AdaptiveAvgPool2d(n)";
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override string Construct(LayerSpec l, string stateName) => $"new {Runtime}AdaptiveAvgPool2d({l.Ints[0]})";

        public override int Apply(ForwardWalker walker, LayerApplication a) =>
            Pool(walker, a.Invocation, $"{a.Who} (AdaptiveAvgPool2d)", a.Input, a.Layer.Layer, a.Shape, a.Spec.Ints[0]);

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var args = invocation.ArgumentList.Arguments;
            if (args.Count != 1 || walker.Constant(args[0].Expression) is not { HasValue: true, Value: int n })
            {
                walker.Unsupported(invocation, "AdaptiveAvgPool2d needs one constant output size");
                return -1;
            }
            if (n <= 0)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), "AdaptiveAvgPool2d", $"the output size must be positive, got {n}");
                return -1;
            }
            return Pool(walker, invocation, "AdaptiveAvgPool2d", x, -1, shape, n);
        }

        private static int Pool(ForwardWalker walker, SyntaxNode at, string who, int x, int layer, int[] shape, int n)
        {
            if (shape.Length != 3) { walker.Rank(at, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(at, who, "pooling needs fixed [C, H, W] sizes", shape); return -1; }
            return walker.Parser.AddOp(OpKind.AdaptiveAvgPool2d, x, -1, layer, shape, new[] { shape[0], n, n }, new[] { n }, 0, who);
        }

        private static string Sizes(OpSpec op) => $"batch * {op.InShape[0]}, {op.InShape[1]}, {op.InShape[2]}, {op.OutShape[1]}, {op.OutShape[2]}";

        public override bool OnGpu => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.AdaptiveAvgPool2dForward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.AdaptiveAvgPool2dBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {Sizes(op)});");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}PoolingKernels.AdaptiveAvgPool2dForward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}PoolingKernels.AdaptiveAvgPool2dBackward(g{op.Input}, g{op.Id}, {Sizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            string x = c.Value(op.Input), y = c.Output(op);
            int ch = op.InShape[0], h = op.InShape[1], w = op.InShape[2], n = op.OutShape[1];
            if (n == 1) { c.Line($"g.Node(\"GlobalAveragePool\", new[] {{ {x} }}, {y});"); return; }
            // [B, C, H·W] × [H·W, n·n] bin-averaging weights (the kernel's bins), reshaped back to [B, C, n, n].
            c.Line($"g.Node(\"Reshape\", new[] {{ {x}, g.Int64(true, 0, {ch}, {h * w}) }}, \"v{op.Id}_rows\");");
            c.Line($"g.Node(\"MatMul\", new[] {{ \"v{op.Id}_rows\", g.Initializer(\"v{op.Id}_bins\", {Kernels}PoolingKernels.AdaptiveAvgPool2dMatrix({h}, {w}, {n}, {n}), {h * w}, {n * n}) }}, \"v{op.Id}_means\");");
            c.Line($"g.Node(\"Reshape\", new[] {{ \"v{op.Id}_means\", g.Int64(true, 0, {ch}, {n}, {n}) }}, {y});");
        }
    }
}
