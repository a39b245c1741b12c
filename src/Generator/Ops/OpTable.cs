using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Model;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// The registry of ops: every <see cref="OpDefinition"/>, found by plan kind, layer kind, layer attribute or
    /// Tensor method. Adding an op means adding its definition here (and its runtime kernel and eager method).
    /// </summary>
    internal static class OpTable
    {
        public static readonly InputOp Input = new();
        public static readonly ResidualAdd Add = new();
        public static readonly BroadcastBinary Subtract = new(OpKind.Subtract, "Subtract", "subtract", "-", "Subtract", "Sub", "the subtraction");
        public static readonly ConcatOp Concat = new();
        public static readonly MatMulOp MatMul = new();
        public static readonly BroadcastBinary Multiply = new(OpKind.Multiply, "Multiply", "multiply", "*", "Multiply", "Mul", "the product");

        /// <summary>Every op; the method forms in the order CNET0005 lists them.</summary>
        public static readonly IReadOnlyList<OpDefinition> All = new OpDefinition[]
        {
            Input,
            new Activation(OpKind.Relu, LayerKind.ReLU, "ReLU", "Relu", GradientSource.Output, onnx: "Relu"),
            new GeluActivation(),
            new Activation(OpKind.Tanh, LayerKind.Tanh, "Tanh", "Tanh", GradientSource.Output, onnx: "Tanh"),
            new Activation(OpKind.Sigmoid, LayerKind.Sigmoid, "Sigmoid", "Sigmoid", GradientSource.Output, onnx: "Sigmoid"),
            new Activation(OpKind.LeakyRelu, LayerKind.LeakyReLU, "LeakyReLU", "LeakyRelu", GradientSource.Input, onnx: "LeakyRelu", Argument.Real("negativeSlope", 0.01)),
            new SiluActivation(),
            new Activation(OpKind.Elu, LayerKind.ELU, "ELU", "Elu", GradientSource.Input, onnx: "Elu", Argument.Real("alpha", 1.0)),
            new Activation(OpKind.Hardswish, LayerKind.Hardswish, "Hardswish", "Hardswish", GradientSource.Input, onnx: "HardSwish"),
            new ElementwiseFunction(OpKind.Abs, "Abs", GradientSource.Input),
            new ElementwiseFunction(OpKind.Exp, "Exp", GradientSource.Output),
            new ElementwiseFunction(OpKind.Log, "Log", GradientSource.Input),
            new LastDimensionSoftmax(OpKind.Softmax, "Softmax", "SoftmaxKernels"),
            new LastDimensionSoftmax(OpKind.LogSoftmax, "LogSoftmax", "LogSoftmaxKernels"),
            new FlattenOp(),
            new UnflattenOp(),
            new ReshapeOp(),
            new PermuteOp(),
            new TransposeOp(),
            new NarrowOp(),
            new ReduceOp(mean: false),
            new ReduceOp(mean: true),
            new OneHotOp(),
            new MaxPool2dOp(),
            new AvgPool2dOp(),
            new AdaptiveAvgPool2dOp(),
            new UpsampleOp(),
            new DropoutOp(),
            new Dropout2dOp(),
            new SelectTokenOp(),
            new MeanOverSequenceOp(),
            new Conv2dOp(),
            new Conv1dOp(),
            new ConvTranspose2dOp(),
            new LinearOp(),
            new BatchNorm2dOp(),
            new BatchNorm1dOp(),
            new LayerNormOp(),
            new GroupNormOp(),
            new EmbeddingOp(),
            new PositionEmbeddingOp(),
            new TokenTypeEmbeddingOp(),
            new SelfAttentionOp(),
            new RecurrentOp(lstm: true),
            new RecurrentOp(lstm: false),
            Add,
            Subtract,
            Multiply,
            Concat,
            MatMul,
            new ScalarOp(scale: true),
            new ScalarOp(scale: false),
        };

        private static readonly Dictionary<OpKind, OpDefinition> s_byKind = All.ToDictionary(d => d.Kind);
        private static readonly Dictionary<LayerKind, OpDefinition> s_byLayer = All.Where(d => d.Layer is not null).ToDictionary(d => d.Layer!.Value);
        private static readonly Dictionary<string, OpDefinition> s_byMethod = All.Where(d => d.Method is not null)
            .SelectMany(d => d.Aliases.Prepend(d.Method!).Select(m => (Method: m, Definition: d))).ToDictionary(m => m.Method, m => m.Definition);

        public static OpDefinition Of(OpKind kind) => s_byKind[kind];
        public static OpDefinition Of(LayerKind kind) => s_byLayer[kind];

        /// <summary>The op a Tensor method names, or null.</summary>
        public static OpDefinition? ForMethod(string method) => s_byMethod.TryGetValue(method, out var d) ? d : null;

        /// <summary>The op a layer attribute class declares (<c>Conv2dAttribute</c>), or null.</summary>
        public static OpDefinition? ForAttribute(string attributeName) =>
            s_byLayer.Values.FirstOrDefault(d => d.Layer + "Attribute" == attributeName);

        /// <summary>What Forward understands, for CNET0005.</summary>
        public static string SupportedCalls =>
            "x.Apply(Layer), " + string.Join(", ", All.Where(d => d.MethodUsage is not null).Select(d => d.MethodUsage)) + $", a + b, {Subtract.Usage}, {Multiply.Usage} (broadcasting), {ConcatOp.Usage}, {NarrowOp.SplitUsage}, {MatMulOp.Usage}, {ScalarOp.Usage}, locals and return";
    }
}
