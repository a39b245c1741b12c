using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>a.MatMul(b)</c> / <c>Tensor.MatMul(a, b)</c> (torch.matmul on equal leading dimensions): per sample
    /// [..., M, K] · [..., K, N] → [..., M, N], one GEMM per product; a sequence [T, K] times a fixed [K, N] has M = T.
    /// Backward: da += dc·bᵀ, db += aᵀ·dc.
    /// </summary>
    internal sealed class MatMulOp : OpDefinition
    {
        public override OpKind Kind => OpKind.MatMul;
        public override string Name => "MatMul";
        public override string? ProducerName => "the matrix product";

        /// <summary>How the grammar writes it.</summary>
        public const string Usage = "a.MatMul(b)";

        public int Combine(ForwardWalker walker, InvocationExpressionSyntax invocation, int a, int b)
        {
            var p = walker.Parser;
            if (p.IsTokens(a) || p.IsTokens(b)) { walker.Unsupported(invocation, "token ids can only feed an Embedding layer"); return -1; }
            var sa = p.ShapeOf(a); var sb = p.ShapeOf(b);
            string who = $"MatMul of {NetworkParser.ShapeBracket(sa)} and {NetworkParser.ShapeBracket(sb)}";
            if (sa.Length < 2 || sb.Length != sa.Length)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation), "MatMul", $"{who}: both need [..., M, K] and [..., K, N] with the same number of dimensions per sample");
                return -1;
            }
            // T may only be a's rows ([T, K] · [K, N]); anywhere else a product would mix positions.
            if (Shapes.HasSequence(sb) || Shapes.HasSequence(sa) && sa.Length != 2)
            {
                walker.Sequence(invocation, "MatMul", "only [T, K] · [K, N] takes the sequence length (as the rows of the first operand)", Shapes.HasSequence(sb) ? sb : sa);
                return -1;
            }
            int rank = sa.Length;
            if (!sa.Take(rank - 2).SequenceEqual(sb.Take(rank - 2)))
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(invocation), "MatMul", $"{who}: the leading dimensions must be equal");
                return -1;
            }
            if (sa[rank - 1] != sb[rank - 2])
            {
                p.ReportPublic(DiagnosticDescriptors.MatMulMismatch, ForwardWalker.Location(invocation), NetworkParser.ShapeBracket(sa), NetworkParser.ShapeBracket(sb), sa[rank - 1], sb[rank - 2]);
                return -1;
            }
            var shape = sa.Take(rank - 1).Concat(new[] { sb[rank - 1] }).ToArray();
            return p.AddOp(OpKind.MatMul, a, b, -1, sa, shape, System.Array.Empty<int>(), 0, "MatMul");
        }

        /// <summary>The kernels' sizes: products, M, K, N (emitted text).</summary>
        private static string Sizes(NetworkSpec s, OpSpec op)
        {
            var a = s.Ops[op.Input].OutShape; var b = s.Ops[op.Input2].OutShape;
            int rank = a.Count;
            string count = rank == 2 ? "batch" : $"batch * {Shapes.Product(a.Take(rank - 2))}";
            return $"{count}, {Shapes.Dim(a[rank - 2])}, {Shapes.Dim(a[rank - 1])}, {Shapes.Dim(b[rank - 1])}";
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}MatMulKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {Sizes(c.Spec, op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            string Gradient(int input) => c.IsData(input) ? "default" : $"(n{input} ? g{input} : default)";
            c.Line($"{Kernels}MatMulKernels.Backward({Gradient(op.Input)}, {Gradient(op.Input2)}, g{op.Id}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {Sizes(c.Spec, op)});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The batched GEMM's sizes: products, M, K and N (emitted text).</summary>
        private static (string Count, string M, string K, string N) GpuSizes(NetworkSpec s, OpSpec op)
        {
            var a = s.Ops[op.Input].OutShape; var b = s.Ops[op.Input2].OutShape;
            int rank = a.Count;
            return (rank == 2 ? "batch" : $"batch * {Shapes.Product(a.Take(rank - 2))}", Shapes.Dim(a[rank - 2]), Shapes.Dim(a[rank - 1]), Shapes.Dim(b[rank - 1]));
        }

        /// <summary>One batched GEMM over the products.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var (count, m, k, n) = GpuSizes(c.Spec, op);
            c.Launch($"K.GemmBatched(false, false, {count}, {m}, {n}, {k}, 1f, {c.Value(op.Input)}, (long){m} * {k}, {c.Value(op.Input2)}, (long){k} * {n}, 0f, {c.Output(op)}, (long){m} * {n});");
        }

        /// <summary>da += dc·bᵀ and db += aᵀ·dc, each one batched GEMM.</summary>
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            var (count, m, k, n) = GpuSizes(c.Spec, op);
            string g = c.Gradient(op.Id);
            if (!c.IsData(op.Input))
                c.Launch($"K.GemmBatched(false, true, {count}, {m}, {k}, {n}, 1f, {g}, (long){m} * {n}, {c.Value(op.Input2)}, (long){k} * {n}, 1f, {c.Gradient(op.Input)}, (long){m} * {k});");
            if (!c.IsData(op.Input2))
                c.Launch($"K.GemmBatched(true, false, {count}, {k}, {n}, {m}, 1f, {c.Value(op.Input)}, (long){m} * {k}, {g}, (long){m} * {n}, 1f, {c.Gradient(op.Input2)}, (long){k} * {n});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"MatMul\", new[] {{ {c.Value(op.Input)}, {c.Value(op.Input2)} }}, {c.Output(op)});");
    }
}
