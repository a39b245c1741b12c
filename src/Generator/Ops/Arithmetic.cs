using System;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// <c>a - b</c> and <c>a * b</c> with broadcasting on per-sample shapes (the batch stays first; aligned from the right,
    /// each dimension equal or 1 on one side; T broadcasts with T or 1): gating ([C, H, W] · [C, 1, 1]), differences,
    /// gated units. Backward reduces each side's gradient over the dimensions it was broadcast along.
    /// </summary>
    internal sealed class BroadcastBinary : OpDefinition
    {
        private readonly OpKind _kind;
        private readonly string _name, _verb, _symbol, _kernel, _onnx, _producer;

        public BroadcastBinary(OpKind kind, string name, string verb, string symbol, string kernel, string onnx, string producer)
        {
            _kind = kind; _name = name; _verb = verb; _symbol = symbol; _kernel = kernel; _onnx = onnx; _producer = producer;
        }

        public override OpKind Kind => _kind;
        public override string Name => _name;
        public override string? ProducerName => _producer;

        /// <summary>How the grammar writes it: "a - b".</summary>
        public string Usage => $"a {_symbol} b";

        public int Combine(ForwardWalker walker, BinaryExpressionSyntax expression, int a, int b)
        {
            var p = walker.Parser;
            if (p.IsTokens(a) || p.IsTokens(b)) { walker.Unsupported(expression, "token ids can only feed an Embedding layer"); return -1; }
            var sa = p.ShapeOf(a); var sb = p.ShapeOf(b);
            int rank = Math.Max(sa.Length, sb.Length);
            var shape = new int[rank];
            for (int d = 0; d < rank; d++)
            {
                int i = sa.Length - rank + d, j = sb.Length - rank + d;
                int n = i >= 0 ? sa[i] : 1, m = j >= 0 ? sb[j] : 1;
                if (n != m && n != 1 && m != 1)
                {
                    p.ReportPublic(DiagnosticDescriptors.BroadcastMismatch, ForwardWalker.Location(expression), _verb,
                        NetworkParser.ShapeBracket(sa), ForwardWalker.Quote(expression.Left), NetworkParser.ShapeBracket(sb), ForwardWalker.Quote(expression.Right),
                        d, Shapes.Dim(n), Shapes.Dim(m));
                    return -1;
                }
                shape[d] = n == 1 ? m : n;
            }
            return p.AddOp(_kind, a, b, -1, shape, shape, Array.Empty<int>(), 0, _verb);
        }

        private static string ShapeArgument(Helpers.EquatableArray<int> shape) => "[" + string.Join(", ", shape.Select(Shapes.Dim)) + "]";

        private string ShapeArguments(CpuContext c, OpSpec op) =>
            $"batch, {ShapeArgument(op.OutShape)}, {ShapeArgument(c.Spec.Ops[op.Input].OutShape)}, {ShapeArgument(c.Spec.Ops[op.Input2].OutShape)}";

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The batch and the three per-sample shapes as static arrays. Along a sequence T joins the batch: an
        /// operand along T drops it from its shape, one that is not (a [F] or [1, F] broadcast over T) drops the size-1
        /// dimension facing T, if it has one, and repeats over each sample's T rows.</summary>
        private string GpuShapes(GpuContext c, OpSpec op)
        {
            bool folded = Shapes.HasSequence(op.OutShape);
            if (!folded)
                return $"batch, {c.Constant($"s_out{op.Id}", op.OutShape)}, {c.Constant($"s_a{op.Id}", c.Spec.Ops[op.Input].OutShape)}, {c.Constant($"s_b{op.Id}", c.Spec.Ops[op.Input2].OutShape)}";
            var a = c.Spec.Ops[op.Input].OutShape; var b = c.Spec.Ops[op.Input2].OutShape;
            System.Collections.Generic.IEnumerable<int> PerSample(Helpers.EquatableArray<int> shape) => Shapes.HasSequence(shape) || shape.Count == op.OutShape.Count ? shape.Skip(1) : shape;
            string Repeat(Helpers.EquatableArray<int> shape) => Shapes.HasSequence(shape) ? "1" : "T";
            return $"batch * T, {c.Constant($"s_out{op.Id}", op.OutShape.Skip(1))}, {c.Constant($"s_a{op.Id}", PerSample(a))}, {c.Constant($"s_b{op.Id}", PerSample(b))}, {Repeat(a)}, {Repeat(b)}";
        }

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.BroadcastForward({Kernels}BinaryOp.{_kernel}, {c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {GpuShapes(c, op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (c.IsData(op.Input) && c.IsData(op.Input2)) return;
            string Gradient(int input) => c.IsData(input) ? "default" : c.Gradient(input);
            c.Launch($"K.BroadcastBackward({Kernels}BinaryOp.{_kernel}, {Gradient(op.Input)}, {Gradient(op.Input2)}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {GpuShapes(c, op)});",
                (c.IsData(op.Input) ? 0 : 1) + (c.IsData(op.Input2) ? 0 : 1)); // one gather per gradient
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}BinaryKernels.Forward({Kernels}BinaryOp.{_kernel}, {c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {ShapeArguments(c, op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            string Gradient(int input) => c.Spec.Ops[c.Storage(input)].Kind == OpKind.Input ? "default" : $"(n{input} ? g{input} : default)";
            c.Line($"{Kernels}BinaryKernels.Backward({Kernels}BinaryOp.{_kernel}, {Gradient(op.Input)}, {Gradient(op.Input2)}, g{op.Id}, {c.Value(op.Input)}, {c.Value(op.Input2)}, {ShapeArguments(c, op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            // ONNX aligns whole tensors from the right: a side with fewer per-sample dimensions gets 1s after the batch.
            string Side(int input, string name)
            {
                int missing = op.OutShape.Count - c.Spec.Ops[input].OutShape.Count;
                if (missing == 0) return c.Value(input);
                c.Line($"g.Node(\"Unsqueeze\", new[] {{ {c.Value(input)}, g.Int64(true, {string.Join(", ", Enumerable.Range(1, missing))}) }}, \"v{op.Id}_{name}\");");
                return $"\"v{op.Id}_{name}\"";
            }
            string a = Side(op.Input, "left"), b = Side(op.Input2, "right");
            c.Line($"g.Node(\"{_onnx}\", new[] {{ {a}, {b} }}, {c.Output(op)});");
        }
    }
}
