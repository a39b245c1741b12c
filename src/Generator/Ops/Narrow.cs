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
    /// <c>x.Narrow(dim, start, length)</c> (torch.narrow, the batch counted as 0): a slice along one dimension, the way a
    /// tensor is split (a gated unit's halves, a channel range). The op's ints are (axis, start) per sample.
    /// </summary>
    /// <summary>The pieces of one Chunk or Split: each becomes a Narrow op when Forward first uses it, so a piece never
    /// read costs nothing.</summary>
    internal sealed class SplitPieces
    {
        private readonly string _method;
        private readonly int _x, _axis;
        private readonly int[] _shape, _sizes;
        private readonly int?[] _values;

        public SplitPieces(string method, int x, int[] shape, int axis, int[] sizes)
        {
            _method = method; _x = x; _shape = shape; _axis = axis; _sizes = sizes; _values = new int?[sizes.Length];
        }

        public int Count => _sizes.Length;

        /// <summary>Each piece's per-sample shape, for messages.</summary>
        public IEnumerable<int[]> Shapes => _sizes.Select(n => { var s = (int[])_shape.Clone(); s[_axis] = n; return s; });

        /// <summary>Piece <paramref name="i"/>'s value (its Narrow op, added on first use).</summary>
        public int Value(NetworkParser p, int i)
        {
            if (_values[i] is int v) return v;
            var outShape = (int[])_shape.Clone();
            outShape[_axis] = _sizes[i];
            int added = p.AddOp(OpKind.Narrow, _x, -1, -1, _shape, outShape, new[] { _axis, _sizes.Take(i).Sum() }, 0, $"{_method}[{i}]");
            _values[i] = added;
            return added;
        }
    }

    internal sealed class NarrowOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Narrow;
        public override string Name => "Narrow";
        public override string? Method => "Narrow";
        public override string? MethodUsage => "Narrow(dim, start, length)";

        /// <summary>The several-valued calls that lower to Narrow, for CNET0005.</summary>
        public const string SplitUsage = "var (a, b) = x.Chunk(n, dim) or x.Split(size or [sizes], dim) (or one piece by a constant index)";

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

        /// <summary>
        /// <c>x.Chunk(chunks, dim)</c>, <c>x.Split(size, dim)</c> and <c>x.Split([sizes…], dim)</c> (torch.chunk, torch.split):
        /// several values, one Narrow each, cut as PyTorch cuts them (chunks of ⌈size / chunks⌉, the last smaller, and
        /// fewer pieces when they are not needed). Null after reporting.
        /// </summary>
        public static SplitPieces? Pieces(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var p = walker.Parser;
            string method = ((MemberAccessExpressionSyntax)invocation.Expression).Name.Identifier.ValueText;
            var args = invocation.ArgumentList.Arguments;
            if (args.Count != 2) { walker.Unsupported(invocation, $"{method} takes {(method == "Chunk" ? "a number of chunks" : "a size or sizes")} and a dimension"); return null; }
            var first = args.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText != "dim") ?? args[0];
            var dimArg = args.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == "dim") ?? args[1];
            if (walker.Constant(dimArg.Expression) is not { HasValue: true, Value: int dim }) { walker.Unsupported(dimArg, $"{method} takes a constant dimension"); return null; }
            int axis = DimensionArguments.PerSample(dim, shape.Length);
            string full = $"[B, {string.Join(", ", shape.Select(Shapes.Dim))}]";
            if (axis < 0 || axis >= shape.Length)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(dimArg), method, axis < 0 ? "dimension 0 is the batch" : $"dimension {dim} is outside {full}");
                return null;
            }
            if (shape[axis] == Shapes.Sequence) { walker.Sequence(invocation, method, "the sequence length T cannot be split", shape); return null; }
            int size = shape[axis];

            int[] sizes;
            if (method == "Split" && SizesList(walker, first.Expression) is { } listed)
            {
                if (listed.Any(v => v <= 0) || listed.Sum() != size)
                {
                    p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(first), "Split",
                        $"sizes ({string.Join(", ", listed)}) must be positive and add up to dimension {dim} of {full}, which has {size}");
                    return null;
                }
                sizes = listed;
            }
            else if (walker.Constant(first.Expression) is { HasValue: true, Value: int n })
            {
                if (n <= 0)
                {
                    p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(first), method, method == "Chunk" ? $"{n} chunks; give at least one" : $"pieces of {n}; give a positive size");
                    return null;
                }
                sizes = Cut(size, method == "Chunk" ? (size + n - 1) / n : n);
            }
            else { walker.Unsupported(first, $"{method} takes constant integers"); return null; }

            return new SplitPieces(method, x, shape, axis, sizes);
        }

        /// <summary>Pieces of <paramref name="piece"/>, the last smaller (torch.split's rule).</summary>
        private static int[] Cut(int size, int piece)
        {
            var sizes = new List<int>();
            for (int start = 0; start < size; start += piece) sizes.Add(Math.Min(piece, size - start));
            return sizes.ToArray();
        }

        /// <summary>The constant sizes of <c>[2, 3]</c>, <c>new[] { 2, 3 }</c> or <c>new int[] { 2, 3 }</c>; null when it is no such list.</summary>
        private static int[]? SizesList(ForwardWalker walker, ExpressionSyntax e)
        {
            IEnumerable<ExpressionSyntax>? items = e switch
            {
                CollectionExpressionSyntax c => c.Elements.Select(x => x is ExpressionElementSyntax ee ? ee.Expression : null!),
                ImplicitArrayCreationExpressionSyntax a => a.Initializer.Expressions,
                ArrayCreationExpressionSyntax { Initializer: { } init } => init.Expressions,
                _ => null,
            };
            if (items is null) return null;
            var values = new List<int>();
            foreach (var item in items)
            {
                if (item is null || walker.Constant(item) is not { HasValue: true, Value: int v }) return null;
                values.Add(v);
            }
            return values.ToArray();
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

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.NarrowForward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.NarrowBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {Sizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            int axis = op.Ints[0] + 1, start = op.Ints[1], end = start + op.OutShape[op.Ints[0]];
            c.Line($"g.Node(\"Slice\", new[] {{ {c.Value(op.Input)}, g.Int64(true, {start}), g.Int64(true, {end}), g.Int64(true, {axis}) }}, {c.Output(op)});");
        }
    }
}
