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
    /// <c>Tensor.Concat(dim, a, b, …)</c> as torch.cat: <c>dim</c> counts the batch (1 is the channels of [C, H, W];
    /// negative counts from the end), every other dimension equal. n tensors become n − 1 ops of two inputs each.
    /// </summary>
    internal sealed class ConcatOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Concat;
        public override string Name => "Concat";
        public override string? ProducerName => "the concatenation";

        /// <summary>How the grammar writes it.</summary>
        public const string Usage = "Tensor.Concat(dim, a, b, …)";

        public int Combine(ForwardWalker walker, InvocationExpressionSyntax invocation, int dim, IReadOnlyList<int> values, IReadOnlyList<ArgumentSyntax> arguments)
        {
            var p = walker.Parser;
            if (values.Any(p.IsTokens)) { walker.Unsupported(invocation, "token ids can only feed an Embedding layer"); return -1; }
            var first = p.ShapeOf(values[0]);
            int rank = first.Length, axis = DimensionArguments.PerSample(dim, rank);
            if (axis < 0 || axis >= rank)
            {
                string why = axis == -1 ? "dimension 0 is the batch, which a network cannot concatenate" : $"dimension {dim} is outside [B, {string.Join(", ", first.Select(Shapes.Dim))}]";
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(arguments[0]), "Tensor.Concat", why);
                return -1;
            }
            int result = values[0];
            for (int i = 1; i < values.Count; i++)
            {
                var a = p.ShapeOf(result); var b = p.ShapeOf(values[i]);
                string? why = b.Length != a.Length ? $"they have {a.Length} and {b.Length} dimensions per sample"
                    : a[axis] == Shapes.Sequence || b[axis] == Shapes.Sequence ? "the sequence length T cannot be concatenated"
                    : Enumerable.Range(0, a.Length).Where(k => k != axis && a[k] != b[k]).Select(k => (int?)k).FirstOrDefault() is int k
                        ? $"dimension {k + 1} is {Shapes.Dim(a[k])} and {Shapes.Dim(b[k])}; all but the concatenated dimension must be equal" : null;
                if (why is not null)
                {
                    p.ReportPublic(DiagnosticDescriptors.ConcatMismatch, ForwardWalker.Location(arguments[i + 1]), NetworkParser.ShapeBracket(a),
                        i == 1 ? ForwardWalker.Quote(arguments[1].Expression) : "the tensors before it", NetworkParser.ShapeBracket(b), ForwardWalker.Quote(arguments[i + 1].Expression), dim, why);
                    return -1;
                }
                var shape = (int[])a.Clone();
                shape[axis] = a[axis] + b[axis];
                result = p.AddOp(OpKind.Concat, result, values[i], -1, a, shape, new[] { axis }, 0, "concat");
            }
            return result;
        }

        /// <summary>outer (the batch and the dimensions before the axis), each side's block (the axis and after), as emitted text.</summary>

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>As the CPU's: over a sequence the sizes are expressions of the pass's T (the device lays values out alike).</summary>
        private static string Sizes(NetworkSpec s, OpSpec op)
        {
            int axis = op.Ints[0];
            var a = s.Ops[op.Input].OutShape; var b = s.Ops[op.Input2].OutShape;
            string outer = axis == 0 ? "batch" : $"batch * {Shapes.Size(a.Take(axis))}";
            return $"{outer}, {Shapes.Size(a.Skip(axis))}, {Shapes.Size(b.Skip(axis))}";
        }

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.ConcatForward({c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {Sizes(c.Spec, op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (c.IsData(op.Input) && c.IsData(op.Input2)) return;
            c.Launch($"K.ConcatBackward({(c.IsData(op.Input) ? "default" : c.Gradient(op.Input))}, {(c.IsData(op.Input2) ? "default" : c.Gradient(op.Input2))}, {c.Gradient(op.Id)}, {Sizes(c.Spec, op)});");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}ConcatKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {Sizes(c.Spec, op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            string Gradient(int input) => c.Spec.Ops[c.Storage(input)].Kind == OpKind.Input ? "default" : $"(n{input} ? g{input} : default)";
            c.Line($"{Kernels}ConcatKernels.Backward({Gradient(op.Input)}, {Gradient(op.Input2)}, g{op.Id}, {Sizes(c.Spec, op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"Concat\", new[] {{ {c.Value(op.Input)}, {c.Value(op.Input2)} }}, {c.Output(op)}, (\"axis\", {op.Ints[0] + 1}));");
    }
}
