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
        public string Targets => TargetType + " " + TargetName;
        /// <summary>The targets' span type: class indices or floats shaped like the output.</summary>
        public abstract string TargetType { get; }
        public abstract string TargetName { get; }
        /// <summary>The name of the optional output span.</summary>
        public abstract string OutputName { get; }

        /// <summary>Targets are class indices (the network is a classifier), not floats shaped like the output.</summary>
        public virtual bool ClassIndices => false;

        /// <summary>The per-sample shape of the targets: none for a class index, else the output's.</summary>
        public virtual EquatableArray<int> TargetShape(LossUse u) => ClassIndices ? EquatableArray<int>.Empty : u.OutShape;

        /// <summary>The attribute's one real property (<c>LabelSmoothing</c>, <c>Beta</c>) and its default, when it has one;
        /// its value travels as <see cref="NetworkSpec.LossParameter"/>.</summary>
        public virtual string? ParameterName => null;
        public virtual double ParameterDefault => 0;

        /// <summary>What is wrong with the parameter's value, or null.</summary>
        public virtual string? CheckParameter(double value) => null;

        /// <summary>Checks the network's output against the loss (reports and returns false when it does not fit).</summary>
        public virtual void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation) { }

        public virtual void AddRegions(RegionBuilder regions, LossUse u) { }

        public abstract void EmitTargetCheck(CpuContext c, LossUse u);

        /// <summary>The mean loss into <c>loss{suffix}</c> and its gradient into g{output} (unweighted: the caller scales it).</summary>
        public abstract void EmitTraining(CpuContext c, LossUse u, int output, string outSize);

        /// <summary>The mean loss of the evaluation forward's output <paramref name="y"/>, after <paramref name="assign"/>
        /// (<c>return </c> or <c>float loss0 = </c>).</summary>
        public abstract void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign);
    }

    /// <summary>
    /// One loss as the emitters write it: its definition and settings, the output value it reads, and the names of its
    /// spans and locals. A network with one output has one, named as always (<c>labels</c>, <c>logits</c>, <c>loss</c>);
    /// with several outputs each loss's names carry its output's name and its index (<c>digitLabels</c>, <c>loss0</c>).
    /// </summary>
    internal sealed record LossUse(LossDefinition Definition, double Parameter, EquatableArray<float> ClassWeights, int IgnoreIndex,
        int Value, EquatableArray<int> OutShape, string OutputName, string TargetName, string Suffix, float Weight, int OutputIndex)
    {
        /// <summary>The targets span of a loss on one of several outputs: "digitLabels", "boxTargets".</summary>
        public static string TargetNameFor(LossDefinition d, string output) => output + (d.ClassIndices ? "Labels" : "Targets");

        public string Targets => Definition.TargetType + " " + TargetName;
        /// <summary>A loss of two outputs (cosine embedding): the second output's value and its index, else -1.</summary>
        public int Value2 { get; init; } = -1;
        public int OutputIndex2 { get; init; } = -1;
        public string Loss => "loss" + Suffix;
        /// <summary>The network's one loss (its names as they always were).</summary>
        public bool Single => Suffix.Length == 0;

        /// <summary>The losses of a network: its one loss, or one per output that names it.</summary>
        public static IReadOnlyList<LossUse> Of(NetworkSpec s)
        {
            if (!s.IsMultiOutput)
            {
                if (s.Loss == LossKind.None) return System.Array.Empty<LossUse>();
                var d = Losses.Of(s.Loss);
                // A loss method: the value it ends in is what the loss reads (its targets are shaped like the output).
                if (s.LossValue >= 0)
                    return new[] { new LossUse(d, 0, s.LossWeights, s.IgnoreIndex, s.LossValue, s.Ops[s.Output].OutShape, d.OutputName, d.TargetName, "", 1f, 0) };
                return new[] { new LossUse(d, s.LossParameter, s.LossWeights, s.IgnoreIndex, s.Output, s.Ops[s.Output].OutShape, d.OutputName, d.TargetName, "", 1f, 0) };
            }
            return s.HeadLosses.Select((l, i) =>
            {
                var d = Losses.Of(l.Kind);
                var output = s.Outputs[l.Output];
                // A loss method's loss reads the value the method ends in; its targets are checked against the output.
                int value = d is CustomLoss ? s.LossValue : output.Value;
                return new LossUse(d, l.Parameter, l.ClassWeights, l.IgnoreIndex, value, s.Ops[output.Value].OutShape, output.Name,
                    TargetNameFor(d, output.Name), i.ToString(System.Globalization.CultureInfo.InvariantCulture), l.Weight, l.Output)
                { Value2 = l.Output2 >= 0 ? s.Outputs[l.Output2].Value : -1, OutputIndex2 = l.Output2 };
            }).ToList();
        }
    }

    /// <summary>A loss against class indices: the output is one score per class ([K]), the targets one label per sample.</summary>
    internal abstract class ClassIndexLoss : LossDefinition
    {
        public override string TargetType => "global::System.ReadOnlySpan<int>";
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

        public override void EmitTargetCheck(CpuContext c, LossUse u) =>
            c.Line($"if ({u.TargetName}.Length != batch) throw new global::System.ArgumentException(\"{c.Spec.TypeName}: \" + {u.TargetName}.Length + \" labels for a batch of \" + batch + \".\", nameof({u.TargetName}));");
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
        public override void AddRegions(RegionBuilder regions, LossUse u) => regions.Add("probs" + u.Suffix, u.OutShape);

        /// <summary>Class weights or an ignored label: PyTorch's weighted mean (over the weights of the labels not ignored).</summary>
        public static bool Weighted(LossUse u) => u.ClassWeights.Count > 0 || u.IgnoreIndex != int.MinValue;

        /// <summary>The weighted kernels' trailing arguments: the class weights' field and the ignored label.</summary>
        internal static string Weighting(LossUse u) => $"{(u.ClassWeights.Count > 0 ? "s_classWeights" + u.Suffix : "default")}, {IntLiteral(u.IgnoreIndex)}";

        /// <summary>The class weights as fields, for the cross-entropy and NLL losses that have them.</summary>
        public static void EmitFields(CpuContext c)
        {
            foreach (var u in LossUse.Of(c.Spec).Where(u => u.Definition is CrossEntropyLoss or NllLoss && u.ClassWeights.Count > 0))
                c.Line($"private static readonly float[] s_classWeights{u.Suffix} = new float[] {{ {string.Join(", ", u.ClassWeights.Select(w => FloatLiteral(w)))} }}; // {u.Definition.Name}.Weights");
        }

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            string smoothing = FloatLiteral(u.Parameter), probs = "probs" + u.Suffix, labels = u.TargetName;
            if (Weighted(u))
            {
                c.Line($"float {u.Loss} = {Kernels}CrossEntropyKernels.Forward({probs}, v{output}, {labels}, batch, {outSize}, {smoothing}, {Weighting(u)});");
                c.Line($"{Kernels}CrossEntropyKernels.Backward(g{output}, {probs}, {labels}, batch, {outSize}, {smoothing}, {Weighting(u)});");
                return;
            }
            c.Line($"float {u.Loss} = {Kernels}CrossEntropyKernels.Forward({probs}, v{output}, {labels}, batch, {outSize}, {smoothing});");
            c.Line($"{Kernels}CrossEntropyKernels.Backward(g{output}, {probs}, {labels}, batch, {outSize}, 1f / batch, {smoothing});");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign)
        {
            string probs = "probs" + u.Suffix;
            if (!c.RegionsInScope) c.Line($"var {probs} = ws.Act.Span.Slice({c.Plan.Region(probs).Offset} * ws.Capacity, {outSize} * batch);");
            c.Line(Weighted(u)
                ? $"{assign}{Kernels}CrossEntropyKernels.Forward({probs}, {y}, {u.TargetName}, batch, {outSize}, {FloatLiteral(u.Parameter)}, {Weighting(u)});"
                : $"{assign}{Kernels}CrossEntropyKernels.Forward({probs}, {y}, {u.TargetName}, batch, {outSize}, {FloatLiteral(u.Parameter)});");
        }
    }

    /// <summary>Negative log-likelihood of the network's log-probabilities against class indices (a classifier like cross-entropy).</summary>
    internal sealed class NllLoss : ClassIndexLoss
    {
        public override LossKind Kind => LossKind.Nll;
        public override string Name => "NLLLoss";
        protected override string ExpectedOutput => "log-probabilities [K]";

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            if (CrossEntropyLoss.Weighted(u))
            {
                c.Line($"float {u.Loss} = {Kernels}NllKernels.Forward(v{output}, {u.TargetName}, batch, {outSize}, {CrossEntropyLoss.Weighting(u)});");
                c.Line($"{Kernels}NllKernels.Backward(g{output}, {u.TargetName}, batch, {outSize}, {CrossEntropyLoss.Weighting(u)});");
                return;
            }
            c.Line($"float {u.Loss} = {Kernels}NllKernels.Forward(v{output}, {u.TargetName}, batch, {outSize});");
            c.Line($"{Kernels}NllKernels.Backward(g{output}, {u.TargetName}, batch, {outSize}, 1f / batch);");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign) =>
            c.Line(CrossEntropyLoss.Weighted(u)
                ? $"{assign}{Kernels}NllKernels.Forward({y}, {u.TargetName}, batch, {outSize}, {CrossEntropyLoss.Weighting(u)});"
                : $"{assign}{Kernels}NllKernels.Forward({y}, {u.TargetName}, batch, {outSize});");
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
        public override string TargetType => "global::System.ReadOnlySpan<float>";
        public override string TargetName => "targets";
        public override string OutputName => "output";
        public override string? ParameterName => _parameter;
        public override double ParameterDefault => _default;
        public override string? CheckParameter(double value) =>
            _parameter is null || value > 0 && Helpers.SourceWriter.IsFiniteFloat(value) ? null : $"{_parameter} must be a positive finite float, got {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

        private string Extra(LossUse u) => _parameter is null ? "" : ", " + FloatLiteral(u.Parameter);

        /// <summary>Float targets must be shaped like the output: batch × its per-sample size.</summary>
        public static void EmitFloatTargetCheck(CpuContext c, LossUse u)
        {
            var s = c.Spec;
            string t = u.TargetName;
            c.Line(c.IsSequence || !u.Single
                ? $"if ({t}.Length != batch * {Shapes.Size(u.OutShape)}) throw new global::System.ArgumentException(\"{s.TypeName}: {t} have \" + {t}.Length + \" floats, but batch \" + batch + \" × [{string.Join(", ", u.OutShape.Select(Shapes.Dim))}] needs \" + (batch * {Shapes.Size(u.OutShape)}) + \".\", nameof({t}));"
                : $"if ({t}.Length != batch * OutputFeatures) throw new global::System.ArgumentException(\"{s.TypeName}: {t} have \" + {t}.Length + \" floats, but batch \" + batch + \" × OutputFeatures needs \" + (batch * OutputFeatures) + \".\", nameof({t}));");
        }

        public override void EmitTargetCheck(CpuContext c, LossUse u) => EmitFloatTargetCheck(c, u);

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            c.Line($"float {u.Loss} = {Kernels}{_kernel}.Forward(v{output}, {u.TargetName}, batch * {outSize}{Extra(u)});");
            c.Line($"{Kernels}{_kernel}.Backward(g{output}, v{output}, {u.TargetName}, batch * {outSize}, 1f / (batch * {outSize}){Extra(u)});");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign) =>
            c.Line($"{assign}{Kernels}{_kernel}.Forward({y}, {u.TargetName}, batch * {outSize}{Extra(u)});");
    }

    /// <summary>
    /// KL divergence of float target probabilities from the network's log-probabilities (nn.KLDivLoss, log_target=False);
    /// its parameter is BatchMean (1: divide by the batch, PyTorch's 'batchmean'; 0: by every element, its default).
    /// </summary>
    internal sealed class KlDivLoss : LossDefinition
    {
        public override LossKind Kind => LossKind.KlDiv;
        public override string Name => "KLDivLoss";
        public override string TargetType => "global::System.ReadOnlySpan<float>";
        public override string TargetName => "targets";
        public override string OutputName => "output";
        public override string? ParameterName => "BatchMean";

        private static string Divisor(LossUse u, string outSize) => u.Parameter != 0 ? "batch" : $"batch * {outSize}";

        public override void EmitTargetCheck(CpuContext c, LossUse u) => FloatTargetLoss.EmitFloatTargetCheck(c, u);

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            c.Line($"float {u.Loss} = {Kernels}KlDivKernels.Forward(v{output}, {u.TargetName}, batch * {outSize}, {Divisor(u, outSize)});");
            c.Line($"{Kernels}KlDivKernels.Backward(g{output}, {u.TargetName}, batch * {outSize}, 1f / ({Divisor(u, outSize)}));");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign) =>
            c.Line($"{assign}{Kernels}KlDivKernels.Forward({y}, {u.TargetName}, batch * {outSize}, {Divisor(u, outSize)});");
    }

    /// <summary>
    /// Cosine embedding loss of two outputs (<c>nn.CosineEmbeddingLoss</c>): one float label per sample, 1 or −1, and
    /// the margin as its parameter; the kernel writes both outputs' gradients.
    /// </summary>
    internal sealed class CosineEmbeddingLoss : LossDefinition
    {
        public override LossKind Kind => LossKind.CosineEmbedding;
        public override string Name => "CosineEmbeddingLoss";
        public override string TargetType => "global::System.ReadOnlySpan<float>";
        public override string TargetName => "targets";
        public override string OutputName => "output";
        public override string? ParameterName => "Margin";
        public override string? CheckParameter(double value) => Helpers.SourceWriter.IsFiniteFloat(value) ? null : "Margin must be a finite float";

        public override void Check(NetworkParser parser, LocationInfo? classLocation, OpSpec output, LocationInfo? returnLocation)
        {
            if (output.OutShape.Count != 1 || Shapes.HasSequence(output.OutShape))
                parser.ReportPublic(DiagnosticDescriptors.LossMismatch, classLocation, Name, "an embedding [D]", NetworkParser.Shape(output.OutShape));
        }

        /// <summary>One float per pair: 1 alike, −1 unlike.</summary>
        public override EquatableArray<int> TargetShape(LossUse u) => EquatableArray<int>.Empty;

        public override void EmitTargetCheck(CpuContext c, LossUse u) =>
            c.Line($"if ({u.TargetName}.Length != batch) throw new global::System.ArgumentException(\"{c.Spec.TypeName}: \" + {u.TargetName}.Length + \" labels (1 alike, -1 unlike) for a batch of \" + batch + \".\", nameof({u.TargetName}));");

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            int second = c.Plan.Storage(u.Value2);
            string margin = FloatLiteral(u.Parameter);
            c.Line($"float {u.Loss} = {Kernels}CosineEmbeddingKernels.Forward(v{output}, v{second}, {u.TargetName}, batch, {outSize}, {margin});");
            c.Line($"{Kernels}CosineEmbeddingKernels.Backward(g{output}, g{second}, v{output}, v{second}, {u.TargetName}, batch, {outSize}, {margin}, 1f / batch);");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign) =>
            c.Line($"{assign}{Kernels}CosineEmbeddingKernels.Forward({y}, y{u.OutputIndex2}, {u.TargetName}, batch, {outSize}, {FloatLiteral(u.Parameter)});");
    }

    /// <summary>
    /// A loss written as a method (<c>[CustomLoss(nameof(M))]</c>): its ops are in the plan after Forward's, reading the
    /// output and the targets (floats shaped like the output); the loss is the mean of the value it ends in, and backward
    /// starts from that mean's gradient.
    /// </summary>
    internal sealed class CustomLoss : LossDefinition
    {
        private readonly bool _classIndices;

        /// <summary><paramref name="classIndices"/>: <c>ClassIndices = true</c>, the targets are one label per sample.</summary>
        public CustomLoss(bool classIndices) { _classIndices = classIndices; }

        public override LossKind Kind => _classIndices ? LossKind.CustomClassIndices : LossKind.Custom;
        public override string Name => "CustomLoss";
        public override string TargetType => _classIndices ? "global::System.ReadOnlySpan<int>" : "global::System.ReadOnlySpan<float>";
        public override string TargetName => _classIndices ? "labels" : "targets";
        public override string OutputName => _classIndices ? "logits" : "output";
        public override bool ClassIndices => _classIndices;

        public override void EmitTargetCheck(CpuContext c, LossUse u)
        {
            if (!_classIndices) FloatTargetLoss.EmitFloatTargetCheck(c, u);
            else c.Line($"if ({u.TargetName}.Length != batch) throw new global::System.ArgumentException(\"{c.Spec.TypeName}: \" + {u.TargetName}.Length + \" labels for a batch of \" + batch + \".\", nameof({u.TargetName}));");
        }

        /// <summary>The loss value's floats over the batch.</summary>
        private static string Count(CpuContext c, LossUse u) => $"batch * {Shapes.Size(c.Spec.Ops[u.Value].OutShape)}";

        public override void EmitTraining(CpuContext c, LossUse u, int output, string outSize)
        {
            c.Line($"float {u.Loss} = {Kernels}CustomLossKernels.Mean(v{output}, {Count(c, u)});");
            c.Line($"{Kernels}CustomLossKernels.Seed(g{output}, {Count(c, u)});");
        }

        public override void EmitEvaluation(CpuContext c, LossUse u, string y, string outSize, string assign) =>
            c.Line($"{assign}{Kernels}CustomLossKernels.Mean(v{c.Plan.Storage(u.Value)}, {Count(c, u)});");
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
            new CosineEmbeddingLoss(),
            new CustomLoss(classIndices: false),
            new CustomLoss(classIndices: true),
        };

        public static LossDefinition Of(LossKind kind) => All.First(l => l.Kind == kind);

        /// <summary>The loss an attribute class declares (<c>Compiled.Nets.CrossEntropyLossAttribute</c>), or null; a
        /// <c>[CustomLoss]</c> on class indices is the second CustomLoss (see NetworkParser.ReadLoss).</summary>
        public static LossDefinition? ForAttribute(string fullName) => All.FirstOrDefault(l => fullName == "Compiled.Nets." + l.Name + "Attribute");
    }
}
