using System;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>Operations that reduce the sequence dimension T: one position ([CLS]), or the mean over the unmasked positions.</summary>
    internal abstract class SequenceReduction : OpDefinition
    {
        protected static bool IsSequenceOfVectors(ForwardWalker walker, InvocationExpressionSyntax invocation, string who, int[] shape)
        {
            if (shape.Length >= 2 && shape[0] == Shapes.Sequence) return true;
            walker.Rank(invocation, who, "[T, ...] (a sequence of vectors)", shape);
            return false;
        }
    }

    /// <summary><c>x.SelectToken(i)</c>: position i of every sequence ([CLS] is 0).</summary>
    internal sealed class SelectTokenOp : SequenceReduction
    {
        public override OpKind Kind => OpKind.SelectToken;
        public override string Name => "SelectToken";
        public override string? Method => "SelectToken";
        public override string? MethodUsage => "SelectToken(i)";

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var args = invocation.ArgumentList.Arguments;
            if (args.Count != 1 || walker.Constant(args[0].Expression) is not { HasValue: true, Value: int position })
            {
                walker.Unsupported(invocation, "SelectToken needs one constant position");
                return -1;
            }
            if (!IsSequenceOfVectors(walker, invocation, "SelectToken", shape)) return -1;
            var p = walker.Parser;
            if (position < 0 || position >= p.MaxSequence)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), "SelectToken", $"position {position} is outside [0, {p.MaxSequence}) (MaxSequence)");
                return -1;
            }
            return p.AddOp(OpKind.SelectToken, x, -1, -1, shape, shape.Skip(1).ToArray(), new[] { position }, 0, "SelectToken");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}SequenceKernels.SelectForward({c.Output(op)}, {c.Value(op.Input)}, batch, T, {Shapes.Size(op.OutShape)}, {op.Ints[0]});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}SequenceKernels.SelectBackward(g{op.Input}, g{op.Id}, batch, T, {Shapes.Size(op.OutShape)}, {op.Ints[0]});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>Position i of each sample's [T, D] block: a Narrow of D values at i·D.</summary>
        private static string GpuSizes(OpSpec op) => $"batch, T * {Shapes.Size(op.OutShape)}, {op.Ints[0]} * {Shapes.Size(op.OutShape)}, {Shapes.Size(op.OutShape)}";

        public override void EmitGpuForward(GpuContext c, OpSpec op) => c.Launch($"K.NarrowForward({c.Output(op)}, {c.Value(op.Input)}, {GpuSizes(op)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.NarrowBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {GpuSizes(op)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"Gather\", new[] {{ {c.Value(op.Input)}, g.Int64(false, {IntLiteral(op.Ints[0])}) }}, {c.Output(op)}, (\"axis\", 1));");
    }

    /// <summary><c>x.MeanOverSequence()</c>: the mean over the positions the attention mask keeps.</summary>
    internal sealed class MeanOverSequenceOp : SequenceReduction
    {
        public override OpKind Kind => OpKind.MeanOverSequence;
        public override string Name => "MeanOverSequence";
        public override string? Method => "MeanOverSequence";
        public override bool ReadsMask => true;

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (invocation.ArgumentList.Arguments.Count != 0) { walker.Unsupported(invocation, "MeanOverSequence() takes no arguments"); return -1; }
            if (!IsSequenceOfVectors(walker, invocation, "MeanOverSequence", shape)) return -1;
            return walker.Parser.AddOp(OpKind.MeanOverSequence, x, -1, -1, shape, shape.Skip(1).ToArray(), Array.Empty<int>(), 0, "MeanOverSequence");
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}SequenceKernels.MeanForward({c.Output(op)}, {c.Value(op.Input)}, mask, batch, T, {Shapes.Size(op.OutShape)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line($"if (n{op.Input}) {Kernels}SequenceKernels.MeanBackward(g{op.Input}, g{op.Id}, mask, batch, T, {Shapes.Size(op.OutShape)});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.SequenceMeanForward({c.Output(op)}, {c.Value(op.Input)}, Mask, batch, T, {Shapes.Size(op.OutShape)});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Launch($"K.SequenceMeanBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, Mask, batch, T, {Shapes.Size(op.OutShape)});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            c.Line($"g.Node(\"Mul\", new[] {{ {c.Value(op.Input)}, \"mask_column\" }}, \"v{op.Id}_masked\");");
            c.Line($"g.Node(\"ReduceSum\", new[] {{ \"v{op.Id}_masked\", g.Int64(true, 1) }}, \"v{op.Id}_sum\", (\"keepdims\", 0));");
            c.Line($"g.Node(\"Div\", new[] {{ \"v{op.Id}_sum\", \"mask_count\" }}, {c.Output(op)});");
        }
    }
}
