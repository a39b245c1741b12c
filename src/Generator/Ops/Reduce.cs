using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>x.Sum(dim)</c> and <c>x.Mean(dim)</c>, optionally <c>keepDim: true</c> (torch's sum/mean over one dimension, the
    /// batch counted as 0): the dimension is dropped, or kept as 1 for broadcasting back. The op's ints are (axis per
    /// sample, keepDim). Over the sequence length T the positions the mask keeps count alone (attention pooling's
    /// weighted sum; the mean is MeanOverSequence's). <c>Mean()</c> over everything stays a loss method's last step.
    /// </summary>
    internal sealed class ReduceOp : OpDefinition
    {
        private readonly bool _mean;

        public ReduceOp(bool mean) { _mean = mean; }

        public override OpKind Kind => _mean ? OpKind.Mean : OpKind.Sum;
        public override string Name => _mean ? "Mean" : "Sum";
        public override string? Method => Name;
        public override string? MethodUsage => $"{Name}(dim) or {Name}(dim, keepDim: true)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var p = walker.Parser;
            var args = invocation.ArgumentList.Arguments;
            if (args.Count == 0 && _mean) { walker.Unsupported(invocation, "Mean() of every element is a loss method's last step (the loss is that mean); give a dimension: x.Mean(dim)"); return -1; }
            var dimArg = args.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == "dim") ?? args.FirstOrDefault(a => a.NameColon is null);
            var keepArg = args.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == "keepDim") ?? (args.Count == 2 && args[1].NameColon is null ? args[1] : null);
            if (args.Count is 0 or > 2 || dimArg is null || walker.Constant(dimArg.Expression) is not { HasValue: true, Value: int dim })
            {
                walker.Unsupported(invocation, $"{Name} takes a constant dimension and optionally keepDim: true");
                return -1;
            }
            bool keep = false;
            if (keepArg is not null)
            {
                if (walker.Constant(keepArg.Expression) is not { HasValue: true, Value: bool k }) { walker.Unsupported(keepArg, $"{Name}'s keepDim is a constant true or false"); return -1; }
                keep = k;
            }
            int axis = DimensionArguments.PerSample(dim, shape.Length);
            if (axis < 0 || axis >= shape.Length)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(dimArg), Name,
                    axis < 0 ? "dimension 0 is the batch" : $"dimension {dim} is outside [B, {string.Join(", ", shape.Select(Shapes.Dim))}]");
                return -1;
            }
            var outShape = keep ? shape.Select((d, i) => i == axis ? 1 : d).ToArray() : shape.Where((_, i) => i != axis).ToArray();
            return p.AddOp(Kind, x, -1, -1, shape, outShape, new[] { axis, keep ? 1 : 0 }, 0, Name);
        }

        /// <summary>outer (the batch and the dimensions before the axis), n, inner, scale.</summary>
        private string Sizes(OpSpec op)
        {
            int axis = op.Ints[0], n = op.InShape[axis];
            string outer = axis == 0 ? "batch" : $"batch * {Shapes.Size(op.InShape.Take(axis))}";
            return $"{outer}, {n}, {Shapes.Size(op.InShape.Skip(axis + 1))}, {(_mean ? $"1f / {n}" : "1f")}";
        }

        /// <summary>The reduction is over T (the first per-sample dimension): masked.</summary>
        private static bool IsOverSequence(OpSpec op) => op.InShape[op.Ints[0]] == Shapes.Sequence;

        public override bool ReadsMaskFor(OpSpec op) => IsOverSequence(op);

        private string SequenceKernel => _mean ? "Mean" : "Sum";

        public override void EmitForward(CpuContext c, OpSpec op) => c.Line(IsOverSequence(op)
            ? $"{Kernels}SequenceKernels.{SequenceKernel}Forward({c.Output(op)}, {c.Value(op.Input)}, mask, batch, T, {Shapes.Size(op.InShape.Skip(1))});"
            : $"{Kernels}ReduceKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (c.InputIsData(op)) return;
            c.Line(IsOverSequence(op)
                ? $"if (n{op.Input}) {Kernels}SequenceKernels.{SequenceKernel}Backward(g{op.Input}, g{op.Id}, mask, batch, T, {Shapes.Size(op.InShape.Skip(1))});"
                : $"if (n{op.Input}) {Kernels}ReduceKernels.Backward(g{op.Input}, g{op.Id}, {Sizes(op)});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>Along a fixed dimension after T it sizes by T like the CPU; over T it is the masked kernel.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op) => c.Launch(IsOverSequence(op)
            ? $"K.Sequence{SequenceKernel}Forward({c.Output(op)}, {c.Value(op.Input)}, Mask, batch, T, {Shapes.Size(op.InShape.Skip(1))});"
            : $"K.ReduceForward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (c.InputIsData(op)) return;
            c.Launch(IsOverSequence(op)
                ? $"K.Sequence{SequenceKernel}Backward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, Mask, batch, T, {Shapes.Size(op.InShape.Skip(1))});"
                : $"K.ReduceBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {Sizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            long axis = op.Ints[0] + 1;
            if (IsOverSequence(op))
            {
                // Padding multiplied by 0, summed over axis 1; a mean divides by the kept positions' count.
                c.Line($"g.Node(\"Mul\", new[] {{ {c.Value(op.Input)}, {LastDimensionSoftmax.MaskFor(c, op, "mask_f")} }}, \"v{op.Id}_kept\");");
                string sum = _mean ? $"\"v{op.Id}_sum\"" : c.Output(op);
                c.Line($"g.Node(\"ReduceSum\", new[] {{ \"v{op.Id}_kept\", g.Int64(true, 1) }}, {sum}, (\"keepdims\", {op.Ints[1]}));");
                if (!_mean) return;
                int rank = op.OutShape.Count + 1;
                c.Line(rank == 2
                    ? $"g.Node(\"Div\", new[] {{ {sum}, \"mask_count\" }}, {c.Output(op)});"
                    : $"g.Node(\"Unsqueeze\", new[] {{ \"mask_count\", g.Int64(true, {string.Join(", ", Enumerable.Range(2, rank - 2))}) }}, \"v{op.Id}_count\");");
                if (rank > 2) c.Line($"g.Node(\"Div\", new[] {{ {sum}, \"v{op.Id}_count\" }}, {c.Output(op)});");
                return;
            }
            // Opset 17: ReduceSum takes its axes as an input, ReduceMean still as an attribute.
            c.Line(_mean
                ? $"g.Node(\"ReduceMean\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"axes\", new long[] {{ {axis} }}), (\"keepdims\", {op.Ints[1]}));"
                : $"g.Node(\"ReduceSum\", new[] {{ {c.Value(op.Input)}, g.Int64(true, {axis}) }}, {c.Output(op)}, (\"keepdims\", {op.Ints[1]}));");
        }
    }

    /// <summary>
    /// <c>ids.OneHot(K)</c> (F.one_hot, as floats): integers — a loss method's class indices, or token ids — as rows of
    /// K with a 1 at the value; no gradient. A value outside [0, K) is an ArgumentOutOfRangeException naming it.
    /// </summary>
    internal sealed class OneHotOp : OpDefinition
    {
        public override OpKind Kind => OpKind.OneHot;
        public override string Name => "OneHot";
        public override string? Method => "OneHot";
        public override string? MethodUsage => "OneHot(classes) (of class indices or token ids)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var p = walker.Parser;
            var args = invocation.ArgumentList.Arguments;
            if (args.Count != 1 || walker.Constant(args[0].Expression) is not { HasValue: true, Value: int classes })
            {
                walker.Unsupported(invocation, "OneHot takes a constant number of classes");
                return -1;
            }
            if (!p.IsTokens(x))
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation), "OneHot",
                    "it reads integers (a loss method's class indices or token ids), and this value holds floats");
                return -1;
            }
            if (classes <= 0)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), "OneHot", $"{classes} classes; give at least one");
                return -1;
            }
            return p.AddOp(OpKind.OneHot, x, -1, -1, shape, shape.Concat(new[] { classes }).ToArray(), new[] { classes }, 0, "OneHot");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}EmbeddingKernels.OneHot({c.Output(op)}, {c.Value(op.Input)}, batch * {Shapes.Size(op.InShape)}, {op.Ints[0]});");

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The device has the uploaded ids, not a loss method's class indices.</summary>
        public override bool OnGpuFor(NetworkSpec s, OpSpec op) => s.Ops[op.Input].Kind == OpKind.Input;

        /// <summary>On the device it reads the uploaded ids (checked on the host against its width, see the twin's TokenVocabulary).</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.OneHot({c.Output(op)}, {c.TokenInput(op.Input)}, batch * {Shapes.Size(op.InShape)}, {op.Ints[0]});");

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"OneHot\", new[] {{ {c.Value(op.Input)}, g.Int64(false, {op.Ints[0]}), g.Initializer(\"v{op.Id}_off_on\", new float[] {{ 0f, 1f }}, 2) }}, {c.Output(op)}, (\"axis\", -1));");
    }
}
