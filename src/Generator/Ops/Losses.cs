using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// A loss declared on the class (<c>[CrossEntropyLoss]</c>, <c>[MSELoss]</c>): what the output must be, the
    /// targets TrainStep and EvaluateLoss take, and the loss and its gradient as emitted after the forward pass.
    /// </summary>
    internal abstract class LossDefinition
    {
        public abstract LossKind Kind { get; }
        /// <summary>The attribute's name without "Attribute", as messages and docs show it.</summary>
        public abstract string Name { get; }
        /// <summary>The targets parameter of TrainStep/EvaluateLoss.</summary>
        public abstract string Targets { get; }
        public abstract string TargetName { get; }
        /// <summary>The name of the optional output span.</summary>
        public abstract string OutputName { get; }

        /// <summary>Checks the network's output against the loss (reports and returns false when it does not fit).</summary>
        public virtual void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation) { }

        public virtual void AddRegions(RegionBuilder regions, NetworkSpec s) { }

        public abstract void EmitTargetCheck(CpuContext c);

        /// <summary>The mean loss into <c>loss</c> and its gradient into g{output}.</summary>
        public abstract void EmitTraining(CpuContext c, int output, string outSize);

        /// <summary>The mean loss of the evaluation forward's output <c>y</c>, returned.</summary>
        public abstract void EmitEvaluation(CpuContext c, string outSize);
    }

    internal sealed class CrossEntropyLoss : LossDefinition
    {
        public override LossKind Kind => LossKind.CrossEntropy;
        public override string Name => "CrossEntropyLoss";
        public override string Targets => "global::System.ReadOnlySpan<int> labels";
        public override string TargetName => "labels";
        public override string OutputName => "logits";

        public override void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation)
        {
            if (output.OutShape.Count != 1 || Shapes.HasSequence(output.OutShape))
                parser.ReportPublic(DiagnosticDescriptors.LossMismatch, classLocation, Name, "class logits [K]", NetworkParser.Shape(output.OutShape));
            else if (output.Kind == OpKind.Softmax)
                parser.ReportPublic(DiagnosticDescriptors.SoftmaxBeforeCrossEntropy, returnLocation);
        }

        // The softmax of the logits, kept for the gradient.
        public override void AddRegions(RegionBuilder regions, NetworkSpec s) => regions.Add("probs", s.Ops[s.Output].OutShape);

        public override void EmitTargetCheck(CpuContext c) =>
            c.Line($"if (labels.Length != batch) throw new global::System.ArgumentException(\"{c.Spec.TypeName}: \" + labels.Length + \" labels for a batch of \" + batch + \".\", nameof(labels));");

        public override void EmitTraining(CpuContext c, int output, string outSize)
        {
            string smoothing = FloatLiteral(c.Spec.LabelSmoothing);
            c.Line($"float loss = {Kernels}CrossEntropyKernels.Forward(probs, v{output}, labels, batch, {outSize}, {smoothing});");
            c.Line($"{Kernels}CrossEntropyKernels.Backward(g{output}, probs, labels, batch, {outSize}, 1f / batch, {smoothing});");
        }

        public override void EmitEvaluation(CpuContext c, string outSize)
        {
            c.Line($"var probs = ws.Act.Span.Slice({c.Plan.Region("probs").Offset} * ws.Capacity, {outSize} * batch);");
            c.Line($"return {Kernels}CrossEntropyKernels.Forward(probs, y, labels, batch, {outSize}, {FloatLiteral(c.Spec.LabelSmoothing)});");
        }
    }

    internal sealed class MseLoss : LossDefinition
    {
        public override LossKind Kind => LossKind.Mse;
        public override string Name => "MSELoss";
        public override string Targets => "global::System.ReadOnlySpan<float> targets";
        public override string TargetName => "targets";
        public override string OutputName => "output";

        public override void EmitTargetCheck(CpuContext c)
        {
            var s = c.Spec;
            var outShape = s.Ops[s.Output].OutShape;
            c.Line(c.IsSequence
                ? $"if (targets.Length != batch * {Shapes.Size(outShape)}) throw new global::System.ArgumentException(\"{s.TypeName}: targets have \" + targets.Length + \" floats, but batch \" + batch + \" × [{string.Join(", ", outShape.Select(Shapes.Dim))}] needs \" + (batch * {Shapes.Size(outShape)}) + \".\", nameof(targets));"
                : $"if (targets.Length != batch * OutputFeatures) throw new global::System.ArgumentException(\"{s.TypeName}: targets have \" + targets.Length + \" floats, but batch \" + batch + \" × OutputFeatures needs \" + (batch * OutputFeatures) + \".\", nameof(targets));");
        }

        public override void EmitTraining(CpuContext c, int output, string outSize)
        {
            c.Line($"float loss = {Kernels}MseKernels.Forward(v{output}, targets, batch * {outSize});");
            c.Line($"{Kernels}MseKernels.Backward(g{output}, v{output}, targets, batch * {outSize}, 1f / (batch * {outSize}));");
        }

        public override void EmitEvaluation(CpuContext c, string outSize) => c.Line($"return {Kernels}MseKernels.Forward(y, targets, batch * {outSize});");
    }

    /// <summary>The losses a network can declare.</summary>
    internal static class Losses
    {
        public static readonly IReadOnlyList<LossDefinition> All = new LossDefinition[] { new CrossEntropyLoss(), new MseLoss() };

        public static LossDefinition Of(LossKind kind) => All.First(l => l.Kind == kind);

        /// <summary>The loss an attribute class declares (<c>Compiled.Nets.CrossEntropyLossAttribute</c>), or null.</summary>
        public static LossDefinition? ForAttribute(string fullName) => All.FirstOrDefault(l => fullName == "Compiled.Nets." + l.Name + "Attribute");
    }
}
