using System;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>a + b</c>: the residual add of two values of one shape.</summary>
    internal sealed class ResidualAdd : OpDefinition
    {
        public override OpKind Kind => OpKind.Add;
        public override string Name => "Add";
        public override string? ProducerName => "the residual add";

        public int Combine(ForwardWalker walker, BinaryExpressionSyntax add, int a, int b)
        {
            var p = walker.Parser;
            if (p.IsTokens(a) || p.IsTokens(b)) { walker.Unsupported(add, "token ids can only feed an Embedding layer"); return -1; }
            var sa = p.ShapeOf(a); var sb = p.ShapeOf(b);
            if (!System.Linq.Enumerable.SequenceEqual(sa, sb))
            {
                p.ReportPublic(DiagnosticDescriptors.AddShapeMismatch, ForwardWalker.Location(add), NetworkParser.ShapeBracket(sa), ForwardWalker.Quote(add.Left), NetworkParser.ShapeBracket(sb), ForwardWalker.Quote(add.Right));
                return -1;
            }
            return p.AddOp(OpKind.Add, a, b, -1, sa, sa, Array.Empty<int>(), 0, "add");
        }

        public override void EmitForward(CpuContext c, OpSpec op) => c.Line($"{Elementwise}.Add({c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            foreach (int input in new[] { op.Input, op.Input2 })
                if (c.Spec.Ops[c.Storage(input)].Kind != OpKind.Input) c.Line($"if (n{input}) {Elementwise}.AddInPlace(g{input}, g{op.Id});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            if (c.Plan.IsNormedAdd(op.Id)) { c.Writer.Line("// in the call of the layer norm that reads it"); return; }
            c.Launch($"K.Add({c.Output(op)}, {c.Value(op.Input)}, {c.Value(op.Input2)}, batch * {Model.Shapes.Size(op.OutShape)});");
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (c.Plan.IsNormedAdd(op.Id)) { c.Writer.Line("// in the backward of the layer norm that reads it"); return; }
            foreach (int input in new[] { op.Input, op.Input2 })
                if (!c.IsData(input)) c.Launch($"K.AddTo({c.Gradient(input)}, {c.Gradient(op.Id)}, batch * {Model.Shapes.Size(op.OutShape)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line($"g.Node(\"Add\", new[] {{ {c.Value(op.Input)}, {c.Value(op.Input2)} }}, {c.Output(op)});");
    }
}
