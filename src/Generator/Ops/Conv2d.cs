using System.Collections.Generic;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>[Conv2d(inChannels, outChannels, kernel, stride, padding, dilation, bias)]</c> with the width overrides
    /// (KernelWidth, StrideWidth, PaddingWidth) and Groups, read from a layer's arguments; Conv1d's are the width ones
    /// of a height-1 convolution.
    /// </summary>
    internal readonly record struct Conv2dArgs(int In, int Out, int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW, int Dilation, int Groups, bool Bias)
    {
        public static Conv2dArgs Of(LayerSpec l) => l.Kind == LayerKind.Conv1d
            ? new(l.Ints[0], l.Ints[1], 1, l.Ints[2], 1, l.Ints[3], 0, l.Ints[4], l.Ints[5], l.Ints[6], l.Bias)
            : new(l.Ints[0], l.Ints[1], l.Ints[2], l.Ints[6], l.Ints[3], l.Ints[7], l.Ints[4], l.Ints[8], l.Ints[5], l.Ints[9], l.Bias);

        public bool Square => KernelH == KernelW && StrideH == StrideW && PadH == PadW;

        /// <summary>How messages show the window: "kernel 3, stride 1, padding 1" or with (height, width) pairs.</summary>
        public string Window => Square
            ? $"kernel {KernelH}, stride {StrideH}, padding {PadH}, dilation {Dilation}"
            : $"kernel ({KernelH}, {KernelW}), stride ({StrideH}, {StrideW}), padding ({PadH}, {PadW}), dilation {Dilation}";
    }

    /// <summary>
    /// 2-D convolution, as nn.Conv2d (kernel, stride and padding per dimension, dilation, groups). The kernel adds the
    /// bias as it lays its output out; Winograd-transformed weights are cached per op while the weights are unchanged.
    /// Grouped convolutions run each group of each sample through the same kernels.
    /// </summary>
    internal class Conv2dOp : OpDefinition
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("inChannels"), Argument.Int("outChannels"), Argument.Int("kernel"), Argument.Int("stride", fallback: 1),
            Argument.Int("padding", ArgumentRule.NonNegative), Argument.Int("dilation", fallback: 1),
            Argument.Int("KernelWidth", ArgumentRule.NonNegative), Argument.Int("StrideWidth", ArgumentRule.NonNegative),
            Argument.Int("PaddingWidth", ArgumentRule.NonNegative, -1), Argument.Int("Groups", fallback: 1), Argument.Bias,
        };

        public override OpKind Kind => OpKind.Conv2d;
        public override string Name => "Conv2d";
        public override LayerKind? Layer => LayerKind.Conv2d;
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        /// <summary>The width arguments default to the square ones.</summary>
        public override void Normalize(int[] ints)
        {
            if (ints[6] == 0) ints[6] = ints[2];
            if (ints[7] == 0) ints[7] = ints[3];
            if (ints[8] < 0) ints[8] = ints[4];
        }

        public override bool Check(NetworkParser parser, LayerDeclaration d) => CheckGroups(parser, d, d.Ints[0], d.Ints[1], d.Ints[d.Ints.Length - 1]);

        protected static bool CheckGroups(NetworkParser parser, LayerDeclaration d, int inChannels, int outChannels, int groups)
        {
            if (inChannels % groups == 0 && outChannels % groups == 0) return true;
            parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, d.Args.Location("Groups"), d.Property, $"{groups} groups must divide both inChannels ({inChannels}) and outChannels ({outChannels})");
            return false;
        }
        public override BiasPlacement Bias => BiasPlacement.InKernel;
        public override bool BiasPerChannel => true;
        public override bool CanWriteInputGradient => true;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            var a = Conv2dArgs.Of(l);
            int fanIn = a.In / a.Groups * a.KernelH * a.KernelW;
            string bound = $"1f / global::System.MathF.Sqrt({fanIn})";
            add("weight", WeightShape(l, a), "Weight", $"Uniform({bound})");
            if (a.Bias) add("bias", new[] { a.Out }, "Bias", $"Uniform({bound})");
        }

        /// <summary>PyTorch's weight shape: [O, C/groups, KH, KW].</summary>
        protected virtual int[] WeightShape(LayerSpec l, Conv2dArgs a) => new[] { a.Out, a.In / a.Groups, a.KernelH, a.KernelW };

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Conv2dArgs.Of(l);
            string bias = a.Bias ? "true" : "false";
            return a.Square && a.Groups == 1
                ? $"new {Runtime}Conv2d(_store, {stateName}, {a.In}, {a.Out}, {a.KernelH}, {a.StrideH}, {a.PadH}, {a.Dilation}, {bias})"
                : $"new {Runtime}Conv2d(_store, {stateName}, {a.In}, {a.Out}, ({a.KernelH}, {a.KernelW}), ({a.StrideH}, {a.StrideW}), ({a.PadH}, {a.PadW}), {a.Dilation}, {a.Groups}, {bias})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = Conv2dArgs.Of(a.Spec);
            var shape = a.Shape;
            string who = $"{a.Who} (Conv2d)";
            if (shape.Length != 3) { walker.Rank(a.Invocation, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, "convolution needs fixed [C, H, W] sizes", shape); return -1; }
            return Convolve(walker, a, i, shape, shape[1], shape[2], (oh, ow) => new[] { i.Out, oh, ow });
        }

        /// <summary>The channel check and output size of a (height, width) window; -1 after reporting.</summary>
        protected int Convolve(ForwardWalker walker, LayerApplication a, Conv2dArgs i, int[] shape, int height, int width, System.Func<int, int, int[]> outShape)
        {
            var p = walker.Parser;
            if (shape[0] != i.In)
            {
                if (!p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inChannels"), ForwardWalker.Int(shape[0]), a.Who, $"{i.In} input channels ({Name}({i.In}, {i.Out}))",
                    walker.Producer(a.Input), $"{shape[0]} channels ({NetworkParser.Shape(shape)})", walker.InputText, "")) return -1;
            }
            int spanH = i.Dilation * (i.KernelH - 1) + 1, spanW = i.Dilation * (i.KernelW - 1) + 1;
            int oh = (height + 2 * i.PadH - spanH) / i.StrideH + 1, ow = (width + 2 * i.PadW - spanW) / i.StrideW + 1;
            if (height + 2 * i.PadH - spanH < 0 || width + 2 * i.PadW - spanW < 0 || oh <= 0 || ow <= 0)
            {
                p.ReportPublic(DiagnosticDescriptors.WindowTooLarge, a.Args.Location("kernel"), $"{a.Who} ({Name})", i.Window, NetworkParser.Shape(shape), "empty");
                return -1;
            }
            return p.AddOp(Kind, a.Input, -1, a.Layer.Layer, shape, outShape(oh, ow), System.Array.Empty<int>(), 0, a.Who);
        }

        public override string? ScratchSize(NetworkSpec s, OpSpec op) => Groups(s, op) == 1
            ? $"{Kernels}Conv2dKernels.ScratchSize({Geometry(s, op, "1")})"
            : $"{Kernels}Conv2dKernels.GroupedScratchSize({Geometry(s, op, "1")}, {Groups(s, op)})";

        private static int Groups(NetworkSpec s, OpSpec op) => Conv2dArgs.Of(s.Layers[op.Layer]).Groups;

        /// <summary>True for a grouped convolution (no fusion with a pool, no GPU kernels yet).</summary>
        public static bool IsGrouped(NetworkSpec s, OpSpec op) => Groups(s, op) > 1;

        /// <summary>The kernels' geometry for <paramref name="batch"/> samples (emitted text): of one group when grouped;
        /// a Conv1d's as a height-1 image.</summary>
        public static string Geometry(NetworkSpec s, OpSpec op, string batch)
        {
            var i = Conv2dArgs.Of(s.Layers[op.Layer]);
            var x = op.InShape;
            int height = x.Count == 2 ? 1 : x[1], width = x[x.Count - 1];
            return $"new {Kernels}Conv2dGeometry({batch}, {x[0] / i.Groups}, {height}, {width}, {i.Out / i.Groups}, {i.KernelH}, {i.KernelW}, {i.StrideH}, {i.StrideW}, {i.PadH}, {i.PadW}, {i.Dilation}, {i.Dilation})";
        }

        /// <summary>The field holding a convolution's cache of Winograd-transformed weights.</summary>
        public static string WeightCache(OpSpec op) => $"_weights{op.Id}";

        public override string? CacheBytes(OpSpec op) => WeightCache(op) + ".Bytes";

        public override void EmitFields(CpuContext c, IReadOnlyList<OpSpec> ops)
        {
            c.Line("// Each convolution's Winograd-transformed weights, reused while the weights are unchanged (checked on every call).");
            foreach (var o in ops) c.Line($"private readonly {Kernels}Conv2dWeightCache {WeightCache(o)} = new();");
        }

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            string bias = c.Layer(op).Bias ? c.Read(op, "bias") : "default";
            if (IsGrouped(c.Spec, op))
            {
                c.Line($"{Kernels}Conv2dKernels.ForwardGrouped({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {bias}, {Geometry(c.Spec, op, "batch")}, {Groups(c.Spec, op)}, ws.Scratch.Span);");
                return;
            }
            string call = $"{Kernels}Conv2dKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}";
            c.Line(c.Layer(op).Bias
                ? $"{call}, {bias}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, {WeightCache(op)}); // bias added in the kernel's output pass"
                : $"{call}, default, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, {WeightCache(op)});");
        }

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            string accumulate = c.WritesInputGradient(op) ? "false" : "true";
            c.Line(IsGrouped(c.Spec, op)
                ? $"{Kernels}Conv2dKernels.BackwardGrouped({c.InputGradient(op)}, {c.Gradient(op, "weight")}, g{op.Id}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, {Groups(c.Spec, op)}, ws.Scratch.Span, accumulateDx: {accumulate});"
                : $"{Kernels}Conv2dKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, g{op.Id}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, accumulateDx: {accumulate}, {WeightCache(op)});");
        }

        public override bool OnGpu => true;

        /// <summary>On the device: depthwise convolutions by direct kernels, the others (grouped too) by im2col and GEMM.</summary>
        private static bool Direct(NetworkSpec s, OpSpec op) => IsGrouped(s, op) && IsDepthwise(s, op);

        /// <summary>One input channel per group.</summary>
        private static bool IsDepthwise(NetworkSpec s, OpSpec op) => Conv2dArgs.Of(s.Layers[op.Layer]) is var a && a.Groups > 1 && a.In == a.Groups;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            if (c.Plan.IsPooledConvolution(op.Id))
            {
                c.Writer.Line("// in the call of the max-pool that reads it");
                return;
            }
            if (Direct(c.Spec, op))
            {
                c.Launch($"K.DepthwiseForward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {(c.Layer(op).Bias ? c.Read(op, "bias") : "default")}, {Geometry(c.Spec, op, "batch")}, {Groups(c.Spec, op)}); // direct, one thread per output");
                return;
            }
            c.Launch($"K.Conv2dForward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {(c.Layer(op).Bias ? c.Read(op, "bias") : "default")}, {Geometry(c.Spec, op, "batch")}, {c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({Geometry(c.Spec, op, "batch")}{GroupsArgument(c.Spec, op)})")}{GroupsArgument(c.Spec, op)}); // im2col, GEMM, bias + layout", 3);
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            bool bias = c.Layer(op).Bias, dx = !c.InputIsData(op);
            if (c.Plan.IsPooledConvolution(op.Id))
            {
                c.Writer.Line("// in the backward of the max-pool that reads it");
                return;
            }
            if (Direct(c.Spec, op))
            {
                c.Launch($"K.DepthwiseBackward({c.GradientIfNeeded(op.Input)}, {c.ParameterGradient(op, "weight")}, {(bias ? c.ParameterGradient(op, "bias") : "default")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, {Groups(c.Spec, op)});",
                    1 + (bias ? 1 : 0) + (dx ? 1 : 0));
                return;
            }
            c.Launch($"K.Conv2dBackward({c.GradientIfNeeded(op.Input)}, {c.ParameterGradient(op, "weight")}, {(bias ? c.ParameterGradient(op, "bias") : "default")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, {c.Scratch($"{Gpu}GpuKernels.Conv2dScratch({Geometry(c.Spec, op, "batch")}{GroupsArgument(c.Spec, op)})")}{GroupsArgument(c.Spec, op)});",
                3 + (dx ? 2 : 0)); // the bias's gradient is summed as dy is moved
        }

        private static string GroupsArgument(NetworkSpec s, OpSpec op) => IsGrouped(s, op) ? $", groups: {Groups(s, op)}" : "";

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var i = Conv2dArgs.Of(c.Layer(op));
            string b = i.Bias ? ", " + c.Initializer(op, "bias") : "";
            bool oneD = Kind == OpKind.Conv1d;
            string kernel = oneD ? OnnxContext.Ints(i.KernelW) : OnnxContext.Ints(i.KernelH, i.KernelW);
            string strides = oneD ? OnnxContext.Ints(i.StrideW) : OnnxContext.Ints(i.StrideH, i.StrideW);
            string pads = oneD ? OnnxContext.Ints(i.PadW, i.PadW) : OnnxContext.Ints(i.PadH, i.PadW, i.PadH, i.PadW);
            string dilations = oneD ? OnnxContext.Ints(i.Dilation) : OnnxContext.Ints(i.Dilation, i.Dilation);
            c.Line($"g.Node(\"Conv\", new[] {{ {c.Value(op.Input)}, {c.Initializer(op, "weight")}{b} }}, {c.Output(op)}, (\"kernel_shape\", {kernel}), (\"strides\", {strides}), (\"pads\", {pads}), (\"dilations\", {dilations}){(i.Groups > 1 ? $", (\"group\", {i.Groups})" : "")});");
        }
    }

    /// <summary>
    /// <c>[ConvTranspose2d(inChannels, outChannels, kernel, stride, padding, outputPadding, bias, dilation)]</c>
    /// (nn.ConvTranspose2d, square, one group): the adjoint of the convolution from its output's shape back to its
    /// input's (ConvTranspose2dKernels), so H' = (H − 1)·s − 2p + d(k − 1) + outputPadding + 1. The kernel adds the bias;
    /// adding to an input gradient another op also feeds goes through a region of the input's size.
    /// </summary>
    internal sealed class ConvTranspose2dOp : OpDefinition
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("inChannels"), Argument.Int("outChannels"), Argument.Int("kernel"), Argument.Int("stride", fallback: 1),
            Argument.Int("padding", ArgumentRule.NonNegative), Argument.Int("outputPadding", ArgumentRule.NonNegative), Argument.Int("dilation", fallback: 1), Argument.Bias,
        };

        private readonly record struct Args(int In, int Out, int Kernel, int Stride, int Padding, int OutputPadding, int Dilation, bool Bias)
        {
            public static Args Of(LayerSpec l) => new(l.Ints[0], l.Ints[1], l.Ints[2], l.Ints[3], l.Ints[4], l.Ints[5], l.Ints[6], l.Bias);
        }

        public override OpKind Kind => OpKind.ConvTranspose2d;
        public override string Name => "ConvTranspose2d";
        public override LayerKind? Layer => LayerKind.ConvTranspose2d;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override BiasPlacement Bias => BiasPlacement.InKernel;
        public override bool BiasPerChannel => true;
        public override bool CanWriteInputGradient => true;

        /// <summary>PyTorch requires outputPadding below the stride or the dilation; the adjoint convolution maps back
        /// onto the input only below the stride.</summary>
        public override bool Check(NetworkParser parser, LayerDeclaration d)
        {
            if (d.Ints[5] < d.Ints[3]) return true;
            parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, d.Args.Location("outputPadding"), d.Property, $"outputPadding {d.Ints[5]} must be below the stride {d.Ints[3]}");
            return false;
        }

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            var a = Args.Of(l);
            // PyTorch's fan-in of a transposed convolution's weight [C, O, K, K]: O·K·K.
            string bound = $"1f / global::System.MathF.Sqrt({a.Out * a.Kernel * a.Kernel})";
            add("weight", new[] { a.In, a.Out, a.Kernel, a.Kernel }, "Weight", $"Uniform({bound})");
            if (a.Bias) add("bias", new[] { a.Out }, "Bias", $"Uniform({bound})");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Args.Of(l);
            return $"new {Runtime}ConvTranspose2d(_store, {stateName}, {a.In}, {a.Out}, {a.Kernel}, {a.Stride}, {a.Padding}, {a.OutputPadding}, {a.Dilation}, {(a.Bias ? "true" : "false")})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = Args.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            string who = $"{a.Who} (ConvTranspose2d)";
            if (shape.Length != 3) { walker.Rank(a.Invocation, who, "[C, H, W]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, "a transposed convolution needs fixed [C, H, W] sizes", shape); return -1; }
            if (shape[0] != i.In
                && !p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("inChannels"), ForwardWalker.Int(shape[0]), a.Who, $"{i.In} input channels (ConvTranspose2d({i.In}, {i.Out}))",
                    walker.Producer(a.Input), $"{shape[0]} channels ({NetworkParser.Shape(shape)})", walker.InputText, "")) return -1;
            int span = i.Dilation * (i.Kernel - 1);
            int oh = (shape[1] - 1) * i.Stride - 2 * i.Padding + span + i.OutputPadding + 1, ow = (shape[2] - 1) * i.Stride - 2 * i.Padding + span + i.OutputPadding + 1;
            if (oh <= 0 || ow <= 0)
            {
                p.ReportPublic(DiagnosticDescriptors.WindowTooLarge, a.Args.Location("padding"), who, $"kernel {i.Kernel}, stride {i.Stride}, padding {i.Padding}, dilation {i.Dilation}", NetworkParser.Shape(shape), "empty");
                return -1;
            }
            return p.AddOp(Kind, a.Input, -1, a.Layer.Layer, shape, new[] { i.Out, oh, ow }, System.Array.Empty<int>(), 0, a.Who);
        }

        /// <summary>The adjoint convolution's geometry for <paramref name="batch"/> samples (emitted text).</summary>
        private static string Geometry(NetworkSpec s, OpSpec op, string batch)
        {
            var i = Args.Of(s.Layers[op.Layer]);
            return $"{Runtime}ConvTranspose2d.Geometry({batch}, {i.In}, {i.Out}, {op.InShape[1]}, {op.InShape[2]}, {i.Kernel}, {i.Stride}, {i.Padding}, {i.OutputPadding}, {i.Dilation})";
        }

        public override string? ScratchSize(NetworkSpec s, OpSpec op) => $"{Kernels}ConvTranspose2dKernels.ScratchSize({Geometry(s, op, "1")})";

        /// <summary>Where an input gradient is computed before it is added to what another op put there.</summary>
        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op) => regions.Add($"t{op.Id}", op.InShape);

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}ConvTranspose2dKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {(c.Layer(op).Bias ? c.Read(op, "bias") : "default")}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span);");

        public override void EmitBackward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}ConvTranspose2dKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, g{op.Id}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, ws.Scratch.Span, t{op.Id}, accumulateDx: {(c.WritesInputGradient(op) ? "false" : "true")});");

        public override bool OnGpu => true;

        private static string GpuScratch(GpuContext c, OpSpec op) => c.Scratch($"{Gpu}GpuKernels.ConvTranspose2dScratch({Geometry(c.Spec, op, "batch")})");

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            bool bias = c.Layer(op).Bias;
            c.Launch($"K.ConvTranspose2dForward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {(bias ? c.Read(op, "bias") : "default")}, {Geometry(c.Spec, op, "batch")}, {GpuScratch(c, op)}); // col2im of the adjoint convolution, bias", 3 + (bias ? 1 : 0));
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            bool bias = c.Layer(op).Bias, dx = !c.InputIsData(op);
            c.Launch($"K.ConvTranspose2dBackward({c.GradientIfNeeded(op.Input)}, {c.ParameterGradient(op, "weight")}, {(bias ? c.ParameterGradient(op, "bias") : "default")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {Geometry(c.Spec, op, "batch")}, {GpuScratch(c, op)});",
                3 + (bias ? 1 : 0) + (dx ? 4 : 0));
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            var i = Args.Of(c.Layer(op));
            string b = i.Bias ? ", " + c.Initializer(op, "bias") : "";
            c.Line($"g.Node(\"ConvTranspose\", new[] {{ {c.Value(op.Input)}, {c.Initializer(op, "weight")}{b} }}, {c.Output(op)}, (\"kernel_shape\", {OnnxContext.Ints(i.Kernel, i.Kernel)}), (\"strides\", {OnnxContext.Ints(i.Stride, i.Stride)}), (\"pads\", {OnnxContext.Ints(i.Padding, i.Padding, i.Padding, i.Padding)}), (\"dilations\", {OnnxContext.Ints(i.Dilation, i.Dilation)}), (\"output_padding\", {OnnxContext.Ints(i.OutputPadding, i.OutputPadding)}));");
        }
    }

    /// <summary>
    /// <c>[Conv1d(inChannels, outChannels, kernel, stride, padding, dilation, bias)]</c> over [C, L] (nn.Conv1d): the
    /// 2-D kernels on a height-1 image, its weight [O, C/groups, K] the same floats as [O, C/groups, 1, K].
    /// </summary>
    internal sealed class Conv1dOp : Conv2dOp
    {
        private static readonly Argument[] s_arguments =
        {
            Argument.Int("inChannels"), Argument.Int("outChannels"), Argument.Int("kernel"), Argument.Int("stride", fallback: 1),
            Argument.Int("padding", ArgumentRule.NonNegative), Argument.Int("dilation", fallback: 1), Argument.Int("Groups", fallback: 1), Argument.Bias,
        };

        public override OpKind Kind => OpKind.Conv1d;
        public override string Name => "Conv1d";
        public override LayerKind? Layer => LayerKind.Conv1d;
        public override IReadOnlyList<Argument> Arguments => s_arguments;
        public override void Normalize(int[] ints) { }

        protected override int[] WeightShape(LayerSpec l, Conv2dArgs a) => new[] { a.Out, a.In / a.Groups, a.KernelW };

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Conv2dArgs.Of(l);
            return $"new {Runtime}Conv1d(_store, {stateName}, {a.In}, {a.Out}, {a.KernelW}, {a.StrideW}, {a.PadW}, {a.Dilation}, {a.Groups}, {(a.Bias ? "true" : "false")})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = Conv2dArgs.Of(a.Spec);
            var shape = a.Shape;
            string who = $"{a.Who} (Conv1d)";
            if (shape.Length != 2) { walker.Rank(a.Invocation, who, "[C, L]", shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, "convolution needs fixed [C, L] sizes", shape); return -1; }
            return Convolve(walker, a, i, shape, 1, shape[1], (_, ow) => new[] { i.Out, ow });
        }
    }
}
