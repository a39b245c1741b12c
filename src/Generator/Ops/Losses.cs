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

        /// <summary>Targets are class indices (the network is a classifier), not floats shaped like the output.</summary>
        public virtual bool ClassIndices => false;

        /// <summary>The attribute's one real property (<c>LabelSmoothing</c>, <c>Beta</c>) and its default, when it has one;
        /// its value travels as <see cref="NetworkSpec.LossParameter"/>.</summary>
        public virtual string? ParameterName => null;
        public virtual double ParameterDefault => 0;

        /// <summary>What is wrong with the parameter's value, or null.</summary>
        public virtual string? CheckParameter(double value) => null;

        /// <summary>Checks the network's output against the loss (reports and returns false when it does not fit).</summary>
        public virtual void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation) { }

        public virtual void AddRegions(RegionBuilder regions, NetworkSpec s) { }

        public abstract void EmitTargetCheck(CpuContext c);

        /// <summary>The mean loss into <c>loss</c> and its gradient into g{output}.</summary>
        public abstract void EmitTraining(CpuContext c, int output, string outSize);

        /// <summary>The mean loss of the evaluation forward's output <c>y</c>, returned.</summary>
        public abstract void EmitEvaluation(CpuContext c, string outSize);
    }

    /// <summary>A loss against class indices: the output is one score per class ([K]), the targets one label per sample.</summary>
    internal abstract class ClassIndexLoss : LossDefinition
    {
        public override string Targets => "global::System.ReadOnlySpan<int> labels";
        public override string TargetName => "labels";
        public override string OutputName => "logits";
        public override bool ClassIndices => true;

        /// <summary>What the output must hold, as CNET0016 says it ("class logits [K]").</summary>
        protected abstract string ExpectedOutput { get; }

        public override void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation)
        {
            if (output.OutShape.Count != 1 || Shapes.HasSequence(output.OutShape))
                parser.ReportPublic(DiagnosticDescriptors.LossMismatch, classLocation, Name, ExpectedOutput, NetworkParser.Shape(output.OutShape));
        }

        public override void EmitTargetCheck(CpuContext c) =>
            c.Line($"if (labels.Length != batch) throw new global::System.ArgumentException(\"{c.Spec.TypeName}: \" + labels.Length + \" labels for a batch of \" + batch + \".\", nameof(labels));");
    }

    internal sealed class CrossEntropyLoss : ClassIndexLoss
    {
        public override LossKind Kind => LossKind.CrossEntropy;
        public override string Name => "CrossEntropyLoss";
        protected override string ExpectedOutput => "class logits [K]";
        public override string? ParameterName => "LabelSmoothing";
        public override string? CheckParameter(double value) => value >= 0 && value < 1 ? null : $"LabelSmoothing must be in [0, 1), got {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

        public override void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation)
        {
            if (output.OutShape.Count != 1 || Shapes.HasSequence(output.OutShape)) base.Check(parser, classLocation, output, returnLocation);
            else if (output.Kind == OpKind.Softmax) parser.ReportPublic(DiagnosticDescriptors.SoftmaxBeforeCrossEntropy, returnLocation);
        }

        // The softmax of the logits, kept for the gradient.
        public override void AddRegions(RegionBuilder regions, NetworkSpec s) => regions.Add("probs", s.Ops[s.Output].OutShape);

        /// <summary>Class weights or an ignored label: PyTorch's weighted mean (over the weights of the labels not ignored).</summary>
        public static bool Weighted(NetworkSpec s) => s.LossWeights.Count > 0 || s.IgnoreIndex != int.MinValue;

        /// <summary>The weighted kernels' trailing arguments: the class weights' field and the ignored label.</summary>
        private static string Weighting(NetworkSpec s) => $"{(s.LossWeights.Count > 0 ? "s_classWeights" : "default")}, {IntLiteral(s.IgnoreIndex)}";

        /// <summary>The class weights as a field, when the loss has them.</summary>
        public static void EmitFields(CpuContext c)
        {
            if (c.Spec.LossWeights.Count > 0)
                c.Line($"private static readonly float[] s_classWeights = new float[] {{ {string.Join(", ", c.Spec.LossWeights.Select(w => FloatLiteral(w)))} }}; // CrossEntropyLoss.Weights");
        }

        public override void EmitTraining(CpuContext c, int output, string outSize)
        {
            string smoothing = FloatLiteral(c.Spec.LossParameter);
            if (Weighted(c.Spec))
            {
                c.Line($"float loss = {Kernels}CrossEntropyKernels.Forward(probs, v{output}, labels, batch, {outSize}, {smoothing}, {Weighting(c.Spec)});");
                c.Line($"{Kernels}CrossEntropyKernels.Backward(g{output}, probs, labels, batch, {outSize}, {smoothing}, {Weighting(c.Spec)});");
                return;
            }
            c.Line($"float loss = {Kernels}CrossEntropyKernels.Forward(probs, v{output}, labels, batch, {outSize}, {smoothing});");
            c.Line($"{Kernels}CrossEntropyKernels.Backward(g{output}, probs, labels, batch, {outSize}, 1f / batch, {smoothing});");
        }

        public override void EmitEvaluation(CpuContext c, string outSize)
        {
            c.Line($"var probs = ws.Act.Span.Slice({c.Plan.Region("probs").Offset} * ws.Capacity, {outSize} * batch);");
            c.Line(Weighted(c.Spec)
                ? $"return {Kernels}CrossEntropyKernels.Forward(probs, y, labels, batch, {outSize}, {FloatLiteral(c.Spec.LossParameter)}, {Weighting(c.Spec)});"
                : $"return {Kernels}CrossEntropyKernels.Forward(probs, y, labels, batch, {outSize}, {FloatLiteral(c.Spec.LossParameter)});");
        }
    }

    /// <summary>Negative log-likelihood of the network's log-probabilities against class indices (a classifier like cross-entropy).</summary>
    internal sealed class NllLoss : ClassIndexLoss
    {
        public override LossKind Kind => LossKind.Nll;
        public override string Name => "NLLLoss";
        protected override string ExpectedOutput => "log-probabilities [K]";

        public override void EmitTraining(CpuContext c, int output, string outSize)
        {
            c.Line($"float loss = {Kernels}NllKernels.Forward(v{output}, labels, batch, {outSize});");
            c.Line($"{Kernels}NllKernels.Backward(g{output}, labels, batch, {outSize}, 1f / batch);");
        }

        public override void EmitEvaluation(CpuContext c, string outSize) => c.Line($"return {Kernels}NllKernels.Forward(y, labels, batch, {outSize});");
    }

    /// <summary>
    /// A loss over float targets shaped like the output, averaged over every element: MSE, L1, smooth L1 (its β as the
    /// kernels' last argument) and binary cross-entropy on logits. The kernels are <c>{Kernel}.Forward(pred, targets, n[, β])</c>
    /// and <c>{Kernel}.Backward(dpred, pred, targets, n, scale[, β])</c>.
    /// </summary>
    internal sealed class FloatTargetLoss : LossDefinition
    {
        private readonly LossKind _kind;
        private readonly string _name, _kernel;
        private readonly string? _parameter;
        private readonly double _default;

        public FloatTargetLoss(LossKind kind, string name, string kernel, string? parameter = null, double parameterDefault = 0)
        {
            _kind = kind; _name = name; _kernel = kernel; _parameter = parameter; _default = parameterDefault;
        }

        public override LossKind Kind => _kind;
        public override string Name => _name;
        public override string Targets => "global::System.ReadOnlySpan<float> targets";
        public override string TargetName => "targets";
        public override string OutputName => "output";
        public override string? ParameterName => _parameter;
        public override double ParameterDefault => _default;
        public override string? CheckParameter(double value) =>
            _parameter is null || value > 0 ? null : $"{_parameter} must be positive, got {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

        private string Extra(CpuContext c) => _parameter is null ? "" : ", " + FloatLiteral(c.Spec.LossParameter);

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
            c.Line($"float loss = {Kernels}{_kernel}.Forward(v{output}, targets, batch * {outSize}{Extra(c)});");
            c.Line($"{Kernels}{_kernel}.Backward(g{output}, v{output}, targets, batch * {outSize}, 1f / (batch * {outSize}){Extra(c)});");
        }

        public override void EmitEvaluation(CpuContext c, string outSize) => c.Line($"return {Kernels}{_kernel}.Forward(y, targets, batch * {outSize}{Extra(c)});");
    }

    /// <summary>
    /// KL divergence of float target probabilities from the network's log-probabilities (nn.KLDivLoss, log_target=False);
    /// its parameter is BatchMean (1: divide by the batch, PyTorch's 'batchmean'; 0: by every element, its default).
    /// </summary>
    internal sealed class KlDivLoss : LossDefinition
    {
        public override LossKind Kind => LossKind.KlDiv;
        public override string Name => "KLDivLoss";
        public override string Targets => "global::System.ReadOnlySpan<float> targets";
        public override string TargetName => "targets";
        public override string OutputName => "output";
        public override string? ParameterName => "BatchMean";

        private static string Divisor(CpuContext c, string outSize) => c.Spec.LossParameter != 0 ? "batch" : $"batch * {outSize}";

        public override void EmitTargetCheck(CpuContext c) => Losses.Of(LossKind.Mse).EmitTargetCheck(c);

        public override void EmitTraining(CpuContext c, int output, string outSize)
        {
            c.Line($"float loss = {Kernels}KlDivKernels.Forward(v{output}, targets, batch * {outSize}, {Divisor(c, outSize)});");
            c.Line($"{Kernels}KlDivKernels.Backward(g{output}, targets, batch * {outSize}, 1f / ({Divisor(c, outSize)}));");
        }

        public override void EmitEvaluation(CpuContext c, string outSize) =>
            c.Line($"return {Kernels}KlDivKernels.Forward(y, targets, batch * {outSize}, {Divisor(c, outSize)});");
    }

    /// <summary>The losses a network can declare.</summary>
    internal static class Losses
    {
        public static readonly IReadOnlyList<LossDefinition> All = new LossDefinition[]
        {
            new CrossEntropyLoss(),
            new FloatTargetLoss(LossKind.Mse, "MSELoss", "MseKernels"),
            new FloatTargetLoss(LossKind.L1, "L1Loss", "L1Kernels"),
            new FloatTargetLoss(LossKind.SmoothL1, "SmoothL1Loss", "SmoothL1Kernels", "Beta", 1.0),
            new FloatTargetLoss(LossKind.BceWithLogits, "BCEWithLogitsLoss", "BceWithLogitsKernels"),
            new NllLoss(),
            new KlDivLoss(),
        };

        public static LossDefinition Of(LossKind kind) => All.First(l => l.Kind == kind);

        /// <summary>The loss an attribute class declares (<c>Compiled.Nets.CrossEntropyLossAttribute</c>), or null.</summary>
        public static LossDefinition? ForAttribute(string fullName) => All.FirstOrDefault(l => fullName == "Compiled.Nets." + l.Name + "Attribute");
    }
}
