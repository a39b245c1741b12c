using System;
using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>Reading the dimension arguments of the shape methods: constants, counted with the batch as PyTorch counts them.</summary>
    internal static class DimensionArguments
    {
        /// <summary>Every argument as a constant int; false after reporting.</summary>
        public static bool Read(ForwardWalker walker, InvocationExpressionSyntax invocation, string method, out int[] values)
        {
            var args = invocation.ArgumentList.Arguments;
            values = new int[args.Count];
            for (int i = 0; i < args.Count; i++)
            {
                if (walker.Constant(args[i].Expression) is not { HasValue: true, Value: int v })
                {
                    walker.Unsupported(invocation, $"{method} takes constant integers");
                    return false;
                }
                values[i] = v;
            }
            return true;
        }

        /// <summary>A batch-counted dimension (negative from the end) as a per-sample index; -1 for the batch, rank for out of range.</summary>
        public static int PerSample(int dim, int rank) => (dim < 0 ? dim + rank + 1 : dim) - 1;
    }

    /// <summary>
    /// <c>x.Unflatten(dim, sizes…)</c> (torch.unflatten): dimension <c>dim</c> (counting the batch) split into
    /// <c>sizes</c>, one of which may be -1. A view: no copy, no kernel (attention heads: [T, 768] → [T, 12, 64]).
    /// </summary>
    internal sealed class UnflattenOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Unflatten;
        public override string Name => "Unflatten";
        public override string? Method => "Unflatten";
        public override string? MethodUsage => "Unflatten(dim, sizes…)";
        public override bool IsView => true;

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var p = walker.Parser;
            if (!DimensionArguments.Read(walker, invocation, "Unflatten", out var values)) return -1;
            if (values.Length < 2) { walker.Unsupported(invocation, "Unflatten takes a dimension and at least one size"); return -1; }
            var args = invocation.ArgumentList.Arguments;
            int d = DimensionArguments.PerSample(values[0], shape.Length);
            if (d < 0 || d >= shape.Length)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), "Unflatten", d < 0 ? "dimension 0 is the batch" : $"dimension {values[0]} is outside [B, {string.Join(", ", shape.Select(Shapes.Dim))}]");
                return -1;
            }
            if (shape[d] == Shapes.Sequence) { walker.Sequence(invocation, "Unflatten", "the sequence length T cannot be split", shape); return -1; }
            var sizes = values.Skip(1).ToArray();
            int infer = Array.IndexOf(sizes, -1), known = sizes.Where(v => v != -1).Aggregate(1, (a, b) => a * b);
            if (sizes.Count(v => v == -1) > 1 || sizes.Any(v => v <= 0 && v != -1))
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), "Unflatten", "sizes must be positive, with at most one -1");
                return -1;
            }
            if (infer >= 0 && known > 0 && shape[d] % known == 0) sizes[infer] = shape[d] / known;
            if (sizes.Any(v => v == -1) || Shapes.Product(sizes) != shape[d])
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), "Unflatten",
                    $"dimension {values[0]} of [B, {string.Join(", ", shape.Select(Shapes.Dim))}] has {shape[d]} values, which ({string.Join(", ", values.Skip(1))}) do not split");
                return -1;
            }
            var outShape = shape.Take(d).Concat(sizes).Concat(shape.Skip(d + 1)).ToArray();
            return p.AddOp(OpKind.Unflatten, x, -1, -1, shape, outShape, new[] { d }, 0, "Unflatten");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            // 0 copies the batch and each dimension before the split (T included); the rest are explicit.
            int d = op.Ints[0];
            var dims = new[] { 0L }.Concat(Enumerable.Repeat(0L, d)).Concat(op.OutShape.Skip(d).Select(v => (long)v));
            c.Line($"g.Node(\"Reshape\", new[] {{ {c.Value(op.Input)}, g.Int64(true, {string.Join(", ", dims)}) }}, {c.Output(op)});");
        }
    }

    /// <summary>
    /// <c>x.Reshape(-1, sizes…)</c> and <c>x.View(-1, sizes…)</c> (torch's reshape/view, the batch first as -1, which the
    /// compiled shape leaves as the one size to infer): a sample's values under another shape. A view: no copy, no kernel.
    /// </summary>
    internal sealed class ReshapeOp : OpDefinition
    {
        private static readonly string[] s_aliases = { "View" };

        public override OpKind Kind => OpKind.Reshape;
        public override string Name => "Reshape";
        public override string? Method => "Reshape";
        public override IReadOnlyList<string> Aliases => s_aliases;
        public override string? MethodUsage => "Reshape(-1, sizes…) or View(-1, sizes…)";
        public override bool IsView => true;

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var p = walker.Parser;
            string method = ((MemberAccessExpressionSyntax)invocation.Expression).Name.Identifier.ValueText;
            if (!DimensionArguments.Read(walker, invocation, method, out var values)) return -1;
            var args = invocation.ArgumentList.Arguments;
            if (values.Length < 2 || values[0] != -1)
            {
                if (values.Length > 0) p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(values.Length < 2 ? invocation.ArgumentList : args[0]), method,
                    "the first size is the batch, -1 (as x.view(-1, …)), and a sample's sizes follow");
                else walker.Unsupported(invocation, $"{method} takes -1 for the batch and a sample's sizes");
                return -1;
            }
            if (Shapes.HasSequence(shape)) { walker.Sequence(invocation, method, "the sequence length T cannot be reshaped; Unflatten a dimension after it", shape); return -1; }
            var sizes = values.Skip(1).ToArray();
            int size = Shapes.Product(shape);
            if (sizes.Any(v => v <= 0) || Shapes.Product(sizes) != size)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), method,
                    sizes.Any(v => v <= 0) ? $"a sample's sizes ({string.Join(", ", sizes)}) must be positive (the batch is the one -1)"
                    : $"a sample of [B, {string.Join(", ", shape)}] has {size} values, but [{string.Join(", ", sizes)}] holds {Shapes.Product(sizes)}");
                return -1;
            }
            return p.AddOp(OpKind.Reshape, x, -1, -1, shape, sizes, Array.Empty<int>(), 0, method);
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"Reshape\", new[] {{ {c.Value(op.Input)}, g.Int64(true, 0, {string.Join(", ", op.OutShape)}) }}, {c.Output(op)});");
    }

    /// <summary>
    /// <c>x.Permute(dims…)</c> (torch.permute, the batch first) and <c>x.Transpose(a, b)</c>: a copy with the per-sample
    /// dimensions reordered (the sequence length T stays first); backward permutes the gradient back.
    /// </summary>
    internal class PermuteOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Permute;
        public override string Name => "Permute";
        public override string? Method => "Permute";
        public override string? MethodUsage => "Permute(dims…)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (!DimensionArguments.Read(walker, invocation, Method!, out var values)) return -1;
            return Add(walker, invocation, x, shape, values);
        }

        /// <summary>Checks a batch-counted permutation and adds the op; -1 after reporting.</summary>
        protected static int Add(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape, int[] dims)
        {
            var p = walker.Parser;
            int rank = shape.Length;
            string full = $"[B, {string.Join(", ", shape.Select(Shapes.Dim))}]";
            if (dims.Length != rank + 1 || dims.OrderBy(v => v).Where((v, i) => v != i).Any() || dims[0] != 0)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation.ArgumentList), invocation.Expression is MemberAccessExpressionSyntax m ? m.Name.Identifier.ValueText : "Permute",
                    $"({string.Join(", ", dims)}) is not a permutation of the {rank + 1} dimensions of {full} that keeps the batch (0) first");
                return -1;
            }
            if (rank > 8) { walker.Unsupported(invocation, "permutes at most 8 dimensions per sample"); return -1; }
            bool sequence = shape[0] == Shapes.Sequence;
            if (sequence && dims[1] != 1) { walker.Sequence(invocation, "Permute", "the sequence length T must stay the first dimension after the batch", shape); return -1; }
            var perm = dims.Skip(1).Select(v => v - 1).ToArray();
            return p.AddOp(OpKind.Permute, x, -1, -1, shape, perm.Select(i => shape[i]).ToArray(), perm, 0, "Permute");
        }

        /// <summary>Rows and the per-row shape and permutation the kernel sees: with T, each position is a row.</summary>
        private static (string Rows, int[] Shape, int[] Perm) Geometry(OpSpec op)
        {
            bool sequence = op.InShape[0] == Shapes.Sequence;
            return sequence
                ? ("batch * T", op.InShape.Skip(1).ToArray(), op.Ints.Skip(1).Select(v => v - 1).ToArray())
                : ("batch", op.InShape.ToArray(), op.Ints.ToArray());
        }

        public override void EmitFields(CpuContext c, IReadOnlyList<OpSpec> ops)
        {
            foreach (var op in ops)
            {
                var (_, shape, perm) = Geometry(op);
                c.Line($"private static readonly int[] s_shape{op.Id} = new int[] {{ {string.Join(", ", shape.Select(v => IntLiteral(v)))} }}, s_permutation{op.Id} = new int[] {{ {string.Join(", ", perm.Select(v => IntLiteral(v)))} }};");
            }
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}ShapeKernels.Permute({c.Output(op)}, {c.Value(op.Input)}, {Geometry(op).Rows}, s_shape{op.Id}, s_permutation{op.Id});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}ShapeKernels.PermuteBackward(g{op.Input}, g{op.Id}, {Geometry(op).Rows}, s_shape{op.Id}, s_permutation{op.Id});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The twin's copies of the per-row shape and permutation (static, so a launch allocates nothing).</summary>
        private static string GpuArgs(GpuContext c, OpSpec op)
        {
            var (rows, shape, perm) = Geometry(op);
            return $"{rows}, {c.Constant($"s_shape{op.Id}", shape)}, {c.Constant($"s_permutation{op.Id}", perm)}";
        }

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.PermuteForward({c.Output(op)}, {c.Value(op.Input)}, {GpuArgs(c, op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.PermuteBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {GpuArgs(c, op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"Transpose\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"perm\", new int[] {{ 0, {string.Join(", ", op.Ints.Select(v => IntLiteral(v + 1)))} }}));");
    }

    /// <summary><c>x.Transpose(a, b)</c>: the permutation swapping two dimensions (the plan holds a Permute).</summary>
    internal sealed class TransposeOp : PermuteOp
    {
        public override OpKind Kind => OpKind.Transpose;
        public override string Name => "Transpose";
        public override string? Method => "Transpose";
        public override string? MethodUsage => "Transpose(a, b)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (!DimensionArguments.Read(walker, invocation, "Transpose", out var values)) return -1;
            if (values.Length != 2) { walker.Unsupported(invocation, "Transpose takes two dimensions"); return -1; }
            int rank = shape.Length + 1;
            var dims = Enumerable.Range(0, rank).ToArray();
            int a = values[0] < 0 ? values[0] + rank : values[0], b = values[1] < 0 ? values[1] + rank : values[1];
            if ((uint)a < (uint)rank && (uint)b < (uint)rank) (dims[a], dims[b]) = (dims[b], dims[a]);
            else dims[0] = -1; // reported as not a permutation
            return Add(walker, invocation, x, shape, dims);
        }
    }
}
