using System;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>Flatten: a view of its input as one feature vector per sample (no copy, no kernel).</summary>
    internal sealed class FlattenOp : OpDefinition
    {
        private const string Why = "the flattened size would depend on the sequence length; reduce T first with SelectToken(i) or MeanOverSequence()";

        public override OpKind Kind => OpKind.Flatten;
        public override string Name => "Flatten";
        public override LayerKind? Layer => LayerKind.Flatten;
        public override string? Method => "Flatten";
        public override bool IsView => true;

        public override bool Check(NetworkParser parser, LayerDeclaration d) => Activation.IgnoresFeatures(parser, d);

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            if (Shapes.HasSequence(a.Shape)) { walker.Sequence(a.Invocation, $"{a.Who} (Flatten)", Why, a.Shape); return -1; }
            return walker.Parser.AddOp(OpKind.Flatten, a.Input, -1, a.Layer.Layer, a.Shape, new[] { Shapes.Product(a.Shape) }, Array.Empty<int>(), 0, a.Who);
        }

        public override string? MethodUsage => "Flatten([startDim])";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var args = invocation.ArgumentList.Arguments;
            if (args.Count > 1 || args.Count == 1 && walker.Constant(args[0].Expression) is not { HasValue: true, Value: int })
            {
                walker.Unsupported(invocation, "Flatten takes at most one constant start dimension");
                return -1;
            }
            if (args.Count == 0) return All(walker, invocation, x, shape);
            // Flatten(startDim), counting the batch as torch.flatten does: the dimensions before it stay.
            int start = DimensionArguments.PerSample((int)walker.Constant(args[0].Expression).Value!, shape.Length);
            if (start < 0 || start >= shape.Length)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), "Flatten",
                    start < 0 ? "dimension 0 is the batch" : $"the start dimension is outside [B, {string.Join(", ", shape.Select(Shapes.Dim))}]");
                return -1;
            }
            if (start == 0) return All(walker, invocation, x, shape);
            if (Shapes.HasSequence(shape.Skip(start))) { walker.Sequence(invocation, "Flatten", Why, shape); return -1; }
            var outShape = shape.Take(start).Concat(new[] { Shapes.Product(shape.Skip(start)) }).ToArray();
            return walker.Parser.AddOp(OpKind.Flatten, x, -1, -1, shape, outShape, new[] { start }, 0, "Flatten");
        }

        private static int All(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (Shapes.HasSequence(shape)) { walker.Sequence(invocation, "Flatten", Why, shape); return -1; }
            return walker.Parser.AddOp(OpKind.Flatten, x, -1, -1, shape, new[] { Shapes.Product(shape) }, Array.Empty<int>(), 0, "Flatten");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line(op.Ints.Count == 0
            ? $"g.Node(\"Flatten\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"axis\", 1));"
            // Flatten(start): 0 copies the batch and the dimensions before start (T included), -1 merges the rest.
            : $"g.Node(\"Reshape\", new[] {{ {c.Value(op.Input)}, g.Int64(true, {string.Join(", ", Enumerable.Repeat("0", op.Ints[0] + 1))}, -1) }}, {c.Output(op)});");
    }
}
