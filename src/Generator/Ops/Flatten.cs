using System;
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

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (invocation.ArgumentList.Arguments.Count != 0) { walker.Unsupported(invocation, "Flatten() takes no arguments"); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(invocation, "Flatten", Why, shape); return -1; }
            return walker.Parser.AddOp(OpKind.Flatten, x, -1, -1, shape, new[] { Shapes.Product(shape) }, Array.Empty<int>(), 0, "Flatten");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line($"g.Node(\"Flatten\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"axis\", 1));");
    }
}
