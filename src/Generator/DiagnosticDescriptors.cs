using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Every diagnostic the generator reports. IDs are never reused. Ranges: 0001–0004 shape mismatches,
    /// 0005–0016 declaration and usage problems, 0017 the symbolic sequence dimension, 0018 the loss, 0019–0020 combining tensors, 0021 the memory budget, 0022–0025 the weights file, 0026 a class the generator cannot extend.
    /// </summary>
    internal static class DiagnosticDescriptors
    {
        private const string Category = "Compiled.Nets";

        // No help link: the project has no public home to resolve one; docs/diagnostics/ID.md explains each ID, and every
        // message names what to change.
        private static DiagnosticDescriptor Error(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        private static DiagnosticDescriptor Warning(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor FeatureMismatch = Error("CNET0001",
            "Layer size does not match its input",
            "{0} expects {1}, but {2} produces {3} for input {4}{5}");

        public static readonly DiagnosticDescriptor WindowTooLarge = Error("CNET0002",
            "Window does not fit its input",
            "{0} with {1} does not fit its input {2}: the output would be {3}");

        public static readonly DiagnosticDescriptor HeadsDoNotDivide = Error("CNET0003",
            "Hidden size not divisible by the number of heads",
            "{0}: hidden size {1} is not divisible by {2} heads");

        public static readonly DiagnosticDescriptor MatMulMismatch = Error("CNET0004",
            "Matrix product inner dimensions differ",
            "MatMul of {0} and {1}: inner dimensions {2} and {3} differ");

        public static readonly DiagnosticDescriptor UnsupportedOp = Error("CNET0005",
            "Unsupported construct in Forward",
            "'{0}' is not supported in Forward: {1}. Supported: " + Ops.OpTable.SupportedCalls + ".");

        public static readonly DiagnosticDescriptor UnusedLayer = Warning("CNET0006",
            "Layer declared but never used",
            "Layer '{0}' is declared but never used in Forward");

        public static readonly DiagnosticDescriptor IgnoredSize = Warning("CNET0007",
            "Parameter-free layer declared with a size",
            "{0} has no parameters and ignores the size {1}; remove the argument");

        public static readonly DiagnosticDescriptor NotPartial = Error("CNET0008",
            "Network class must be partial",
            "The [Network] class '{0}' must be declared partial (and so must every type containing it)");

        public static readonly DiagnosticDescriptor SoftmaxBeforeCrossEntropy = Warning("CNET0009",
            "Softmax before cross-entropy",
            "Forward ends with Softmax(), but [CrossEntropyLoss] applies log-softmax to the logits itself; return the logits instead");

        public static readonly DiagnosticDescriptor MissingForward = Error("CNET0010",
            "Missing or mismatched Forward method",
            "Network '{0}' needs a method 'Tensor Forward(Tensor {1})' matching its [Input]: {2}");

        public static readonly DiagnosticDescriptor RankMismatch = Error("CNET0011",
            "Layer applied to a tensor of the wrong rank",
            "{0} expects a per-sample shape {1}, but its input is {2} for input {3}");

        public static readonly DiagnosticDescriptor AddShapeMismatch = Error("CNET0012",
            "Residual add of different shapes",
            "Cannot add {0} (left, from {1}) and {2} (right, from {3}): the shapes must be equal");

        public static readonly DiagnosticDescriptor BadLayerProperty = Error("CNET0013",
            "Invalid layer property",
            "Layer property '{0}' {1}");

        public static readonly DiagnosticDescriptor InvalidArgument = Error("CNET0014",
            "Invalid layer argument",
            "{0}: {1}");

        public static readonly DiagnosticDescriptor MissingInput = Error("CNET0015",
            "Network has no [Input]",
            "Network '{0}' needs an [Input(...)] attribute giving the per-sample input shape");

        public static readonly DiagnosticDescriptor LossMismatch = Error("CNET0016",
            "Loss does not fit the output",
            "{0} needs {1} per sample, but Forward returns {2}");

        public static readonly DiagnosticDescriptor SequenceDimension = Error("CNET0017",
            "Sequence dimension where a fixed size is needed",
            "{0} cannot take the sequence dimension T: {1} (its input is {2} for input {3})");

        public static readonly DiagnosticDescriptor SeveralLosses = Error("CNET0018",
            "More than one loss",
            "Network '{0}' declares several losses ({1}); keep exactly one");

        public static readonly DiagnosticDescriptor BroadcastMismatch = Error("CNET0019",
            "Shapes that do not broadcast",
            "Cannot {0} {1} (left, from {2}) and {3} (right, from {4}): dimension {5} is {6} on the left and {7} on the right; aligned from the right, each dimension must be equal or 1 on one side");

        public static readonly DiagnosticDescriptor ConcatMismatch = Error("CNET0020",
            "Shapes that do not concatenate",
            "Cannot concatenate {0} (from {1}) and {2} (from {3}) along dimension {4}: {5}");

        public static readonly DiagnosticDescriptor MemoryBudgetExceeded = Warning("CNET0021",
            "Memory budget exceeded",
            "{0} needs at least {1} to {2} at batch {3} ({4}; the kernels' scratch comes on top), over its budget of {5}; the largest regions: {6}");

        public static readonly DiagnosticDescriptor WeightsFileUnusable = Error("CNET0022",
            "Weights file cannot be read",
            "[Weights(\"{0}\")]: {1}");

        public static readonly DiagnosticDescriptor WeightsMissing = Error("CNET0023",
            "Weights file lacks tensors the network expects",
            "'{0}' has no tensor for {1} of the {2} tensors {3} expects: {4}");

        public static readonly DiagnosticDescriptor WeightsMismatch = Error("CNET0024",
            "Weights file tensor of another shape or dtype",
            "'{0}' holds '{1}' as {2} {3}, but {4} expects {5}");

        public static readonly DiagnosticDescriptor WeightsUnused = Warning("CNET0025",
            "Weights file tensors the network does not use",
            "'{0}' has {1} tensors {2} does not use (LoadWeights skips them): {3}");

        public static readonly DiagnosticDescriptor UnsupportedDeclaration = Error("CNET0026",
            "Network class the generator cannot extend",
            "The [Network] class '{0}' {1}");

        public static readonly IReadOnlyList<DiagnosticDescriptor> All = new[]
        {
            FeatureMismatch, WindowTooLarge, HeadsDoNotDivide, MatMulMismatch, UnsupportedOp, UnusedLayer, IgnoredSize, NotPartial,
            SoftmaxBeforeCrossEntropy, MissingForward, RankMismatch, AddShapeMismatch, BadLayerProperty, InvalidArgument, MissingInput, LossMismatch,
            SequenceDimension, SeveralLosses, BroadcastMismatch, ConcatMismatch, MemoryBudgetExceeded, WeightsFileUnusable, WeightsMissing,
            WeightsMismatch, WeightsUnused, UnsupportedDeclaration,
        };

        private static readonly Dictionary<string, DiagnosticDescriptor> s_byId = All.ToDictionary(d => d.Id);

        public static DiagnosticDescriptor ById(string id) => s_byId[id];
    }
}
