using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>x.Narrow(dim, start, length)</c> (torch.narrow, the batch counted as 0): a slice along one dimension, the way a
    /// tensor is split (a gated unit's halves, a channel range). The op's ints are (axis, start) per sample.
    /// </summary>
    internal sealed class NarrowOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Narrow;
        public override string Name => "Narrow";
        public override string? Method => "Narrow";
        public override string? MethodUsage => "Narrow(dim, start, length)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (!DimensionArguments.Read(walker, invocation, "Narrow", out var values)) return -1;
            if (values.Length != 3) { walker.Unsupported(invocation, "Narrow takes a dimension, a start and a length"); return -1; }
            int axis = DimensionArguments.PerSample(values[0], shape.Length), start = values[1], length = values[2];
            var p = walker.Parser;
            string full = $"[B, {string.Join(", ", shape.Select(Shapes.Dim))}]";
            if (axis < 0 || axis >= shape.Length)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList.Arguments[0]), "Narrow", axis < 0 ? "dimension 0 is the batch" : $"dimension {values[0]} is outside {full}");
                return -1;
            }
            if (shape[axis] == Shapes.Sequence) { walker.Sequence(invocation, "Narrow", "the sequence length T cannot be sliced", shape); return -1; }
            if (start < 0 || length <= 0 || start + length > shape[axis])
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), "Narrow",
                    $"[{start}, {start + length}) is outside dimension {values[0]} of {full}, which has {shape[axis]}");
                return -1;
            }
            var outShape = (int[])shape.Clone();
            outShape[axis] = length;
            return p.AddOp(OpKind.Narrow, x, -1, -1, shape, outShape, new[] { axis, start }, 0, "Narrow");
        }

        /// <summary>outer (the batch and the dimensions before the axis), the input's block, the offset, the output's block.</summary>
        private static string Sizes(OpSpec op)
        {
            int axis = op.Ints[0], inner = Shapes.Product(op.InShape.Skip(axis + 1));
            string outer = axis == 0 ? "batch" : $"batch * {Shapes.Size(op.InShape.Take(axis))}";
            return $"{outer}, {op.InShape[axis] * inner}, {op.Ints[1] * inner}, {op.OutShape[axis] * inner}";
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}ConcatKernels.NarrowForward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}ConcatKernels.NarrowBackward(g{op.Input}, g{op.Id}, {Sizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            int axis = op.Ints[0] + 1, start = op.Ints[1], end = start + op.OutShape[op.Ints[0]];
            c.Line($"g.Node(\"Slice\", new[] {{ {c.Value(op.Input)}, g.Int64(true, {start}), g.Int64(true, {end}), g.Int64(true, {axis}) }}, {c.Output(op)});");
        }
    }
}
