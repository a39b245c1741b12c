using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>
    /// Elementwise activations (ReLU, GELU, Tanh, Sigmoid, LeakyReLU, SiLU, ELU, Hardswish), fused into the chain of
    /// the op before them. The kernels are <c>Elementwise.{Method}</c> and <c>Elementwise.{Method}Grad</c>, which take
    /// the saved output or input (<see cref="GradientSource"/>) and, for a parameterised one, its parameter
    /// (LeakyReLU's slope, ELU's alpha: the op's <c>Real</c>).
    /// </summary>
    internal class Activation : OpDefinition
    {
        private readonly OpKind _kind;
        private readonly LayerKind _layer;
        private readonly string _name, _method, _onnx;
        private readonly GradientSource _gradient;
        private readonly Argument? _parameter;

        /// <param name="onnx">The ONNX operator; with a parameter, it takes it as its "alpha" attribute.</param>
        /// <param name="parameter">The one real argument of a parameterised activation (its attribute's and method's).</param>
        public Activation(OpKind kind, LayerKind layer, string name, string method, GradientSource gradient, string onnx, Argument? parameter = null)
        {
            _kind = kind; _layer = layer; _name = name; _method = method; _gradient = gradient; _onnx = onnx; _parameter = parameter;
        }

        public override OpKind Kind => _kind;
        public override string Name => _name;
        public override LayerKind? Layer => _layer;
        public override string? Method => _method;
        public override string? MethodUsage => _parameter is null ? _method + "()" : $"{_method}([{_parameter.Name}])";
        public override IReadOnlyList<Argument> Arguments => _parameter is null ? NoArguments : new[] { _parameter };
        public override string? ProducerName => _name;
        public override bool IsElementwise => true;
        public override GradientSource GradientSource => _gradient;

        public override bool Check(NetworkParser parser, LayerDeclaration d) => _parameter is not null || IgnoresFeatures(parser, d);

        /// <summary>A size given to a layer that has none (<c>[ReLU(64)]</c>) is reported and ignored.</summary>
        internal static bool IgnoresFeatures(NetworkParser parser, LayerDeclaration d)
        {
            int ignored = d.Args.Int("features", 0);
            if (ignored != 0 && d.IsRoot) parser.ReportPublic(DiagnosticDescriptors.IgnoredSize, d.Args.Location("features"), $"{d.Property} ({d.TypeName})", ignored);
            return true;
        }

        public override string Construct(LayerSpec l, string stateName) => _parameter is null
            ? base.Construct(l, stateName)
            : $"new {Runtime}{l.Kind}({l.Real.ToString("R", CultureInfo.InvariantCulture)})";

        public override int Apply(ForwardWalker walker, LayerApplication a) =>
            walker.Parser.AddOp(Kind, a.Input, -1, a.Layer.Layer, a.Shape, a.Shape, Array.Empty<int>(), a.Spec.Real, a.Who);

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (_parameter is null) return walker.NoArguments(invocation, Kind, _method, x, shape);
            var args = invocation.ArgumentList.Arguments;
            double value = _parameter.Default;
            if (args.Count > 1 || args.Count == 1 && walker.Constant(args[0].Expression) is not { HasValue: true, Value: int or float or double })
            {
                walker.Unsupported(invocation, $"{_method} takes at most one constant {_parameter.Name}");
                return -1;
            }
            if (args.Count == 1) value = Convert.ToDouble(walker.Constant(args[0].Expression).Value, CultureInfo.InvariantCulture);
            if (args.Count == 1 && !walker.Finite(value, args[0], _method)) return -1;
            return walker.Parser.AddOp(Kind, x, -1, -1, shape, shape, Array.Empty<int>(), value, _method);
        }

        private string Parameter(PlanStage stage) => _parameter is null ? "" : ", " + FloatLiteral(stage.P);

        public override string StageForward(PlanStage stage, string t, bool vector, bool training, string index) => $"{t} = {Elementwise}.{_method}({t}{Parameter(stage)});";

        /// <summary>The scalar stage compiles into the GPU's fused kernels too (ILGPU maps MathF to XMath).</summary>
        public override bool OnGpu => true;

        public override string StageBackward(PlanStage stage, int previousValue, Func<string, string> load) => _gradient == GradientSource.Input
            ? $"g = {Elementwise}.{_method}Grad({load(previousValue < 0 ? "src" : "v" + previousValue)}, g{Parameter(stage)});"
            : $"g = {Elementwise}.{_method}Grad({load("v" + stage.Value)}, g{Parameter(stage)});";

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line(_parameter is null
            ? $"g.Node(\"{_onnx}\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)});"
            : $"g.Node(\"{_onnx}\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"alpha\", {FloatLiteral(op.Real)}));");
    }

    /// <summary>
    /// An elementwise function with no layer of its own, called in Forward or a loss method: <c>x.Abs()</c>,
    /// <c>x.Exp()</c>, <c>x.Log()</c> (torch.abs/exp/log). A stage of the fused chain, like an activation; its backward
    /// reads its input (abs, log) or its output (exp); the scalar stage compiles into the GPU's fused kernels too.
    /// </summary>
    internal sealed class ElementwiseFunction : OpDefinition
    {
        private readonly OpKind _kind;
        private readonly string _method;
        private readonly GradientSource _gradient;

        public ElementwiseFunction(OpKind kind, string method, GradientSource gradient) { _kind = kind; _method = method; _gradient = gradient; }

        public override OpKind Kind => _kind;
        public override string Name => _method;
        public override string? Method => _method;
        public override string? ProducerName => _method;
        public override bool IsElementwise => true;
        public override GradientSource GradientSource => _gradient;

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape) =>
            walker.NoArguments(invocation, Kind, _method, x, shape);

        public override string StageForward(PlanStage stage, string t, bool vector, bool training, string index) => $"{t} = {Elementwise}.{_method}({t});";

        public override bool OnGpu => true;

        public override string StageBackward(PlanStage stage, int previousValue, Func<string, string> load) => _gradient == GradientSource.Input
            ? $"g = {Elementwise}.{_method}Grad({load(previousValue < 0 ? "src" : "v" + previousValue)}, g);"
            : $"g = {Elementwise}.{_method}Grad({load("v" + stage.Value)}, g);";

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line($"g.Node(\"{_method}\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)});");
    }

    /// <summary>GELU with erf (PyTorch's default); ONNX opset 17 has no Gelu, so the graph spells it out.</summary>
    internal sealed class GeluActivation : Activation
    {
        public GeluActivation() : base(OpKind.Gelu, LayerKind.GELU, "GELU", "Gelu", GradientSource.Input, "Gelu") { }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            string x = c.Value(op.Input), y = c.Output(op);
            // x · ½ · (1 + erf(x / √2)), as the kernels compute it.
            c.Line($"g.Node(\"Div\", new[] {{ {x}, g.Scalar(1.4142135f) }}, \"v{op.Id}_scaled\");");
            c.Line($"g.Node(\"Erf\", new[] {{ \"v{op.Id}_scaled\" }}, \"v{op.Id}_erf\");");
            c.Line($"g.Node(\"Add\", new[] {{ \"v{op.Id}_erf\", g.Scalar(1f) }}, \"v{op.Id}_one\");");
            c.Line($"g.Node(\"Mul\", new[] {{ {x}, \"v{op.Id}_one\" }}, \"v{op.Id}_prod\");");
            c.Line($"g.Node(\"Mul\", new[] {{ \"v{op.Id}_prod\", g.Scalar(0.5f) }}, {y});");
        }
    }

    /// <summary>SiLU: opset 17 has no SiLU operator, so the graph is x · Sigmoid(x).</summary>
    internal sealed class SiluActivation : Activation
    {
        public SiluActivation() : base(OpKind.Silu, LayerKind.SiLU, "SiLU", "Silu", GradientSource.Input, "Silu") { }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            string x = c.Value(op.Input);
            c.Line($"g.Node(\"Sigmoid\", new[] {{ {x} }}, \"v{op.Id}_sigmoid\");");
            c.Line($"g.Node(\"Mul\", new[] {{ {x}, \"v{op.Id}_sigmoid\" }}, {c.Output(op)});");
        }
    }

    /// <summary>
    /// Softmax and log-softmax over the last dimension (attention-style heads, class probabilities, log-probabilities for
    /// NLL): one kernel class each (<c>{Kernel}.Forward(y, x, rows, cols)</c>, <c>Backward(dx, dy, y, rows, cols)</c>);
    /// backward reads the output.
    /// </summary>
    internal sealed class LastDimensionSoftmax : OpDefinition
    {
        private readonly OpKind _kind;
        private readonly string _name, _kernel;

        public LastDimensionSoftmax(OpKind kind, string name, string kernel) { _kind = kind; _name = name; _kernel = kernel; }

        public override OpKind Kind => _kind;
        public override string Name => _name;
        public override string? Method => _name;

        public override string? MethodUsage => _name + "([dim])";

        /// <summary><c>Softmax()</c> (the last dimension), or <c>Softmax(dim)</c> counting the batch; another dimension than
        /// the last is kept in the op's ints (per sample) and runs the strided kernels.</summary>
        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var args = invocation.ArgumentList.Arguments;
            // Softmax() of [T] is over the sequence: the masked kernel, not the row kernel (padding would share the mass).
            if (args.Count == 0 && !(shape.Length == 1 && shape[0] == Shapes.Sequence)) return walker.NoArguments(invocation, Kind, _name, x, shape);
            if (args.Count == 0) return OverSequence(walker, invocation, x, shape);
            if (!DimensionArguments.Read(walker, invocation, _name, out var values) || values.Length != 1)
            {
                if (values?.Length > 1) walker.Unsupported(invocation, $"{_name} takes at most one dimension");
                return -1;
            }
            int axis = DimensionArguments.PerSample(values[0], shape.Length);
            if (axis < 0 || axis >= shape.Length)
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), _name,
                    axis < 0 ? "dimension 0 is the batch" : $"dimension {values[0]} is outside [B, {string.Join(", ", shape.Select(Shapes.Dim))}]");
                return -1;
            }
            if (shape[axis] == Shapes.Sequence) return OverSequence(walker, invocation, x, shape);
            var ints = axis == shape.Length - 1 ? Array.Empty<int>() : new[] { axis };
            return walker.Parser.AddOp(Kind, x, -1, -1, shape, shape, ints, 0, _name);
        }

        /// <summary>A softmax over T (always the first per-sample dimension): the positions the mask keeps share the
        /// probability, padding gets 0. A log-softmax there would be −∞ at padding, so it is refused.</summary>
        private int OverSequence(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            if (_kind == OpKind.LogSoftmax) { walker.Sequence(invocation, _name, "a log-softmax over T would be −∞ at padding; take Softmax over T, or log-softmax over another dimension", shape); return -1; }
            return walker.Parser.AddOp(Kind, x, -1, -1, shape, shape, new[] { 0 }, 0, _name);
        }

        /// <summary>The op is a softmax over the sequence length T.</summary>
        private static bool IsOverSequence(OpSpec op) => op.Ints.Count > 0 && op.InShape[op.Ints[0]] == Shapes.Sequence;

        public override bool ReadsMaskFor(OpSpec op) => IsOverSequence(op);

        private static string Sizes(CpuContext c, OpSpec op) => $"{c.Rows(op)}, {Shapes.Dim(op.OutShape[op.OutShape.Count - 1])}";

        /// <summary>outer (the batch and the dimensions before the axis), the axis, inner (the dimensions after it).</summary>
        private static string Along(OpSpec op)
        {
            int axis = op.Ints[0];
            string outer = axis == 0 ? "batch" : $"batch * {Shapes.Size(op.OutShape.Take(axis))}";
            return $"{outer}, {op.OutShape[axis]}, {Shapes.Size(op.OutShape.Skip(axis + 1))}, log: {(IsLog(op) ? "true" : "false")}";
        }

        private static bool IsLog(OpSpec op) => op.Kind == OpKind.LogSoftmax;

        /// <summary>batch, T, and the size of the dimensions after T.</summary>
        private static string OverT(OpSpec op) => $"batch, T, {Shapes.Size(op.OutShape.Skip(1))}";

        public override void EmitForward(CpuContext c, OpSpec op) => c.Line(op.Ints.Count == 0
            ? $"{Kernels}{_kernel}.Forward({c.Output(op)}, {c.Value(op.Input)}, {Sizes(c, op)});"
            : IsOverSequence(op) ? $"{Kernels}SoftmaxKernels.ForwardOverSequence({c.Output(op)}, {c.Value(op.Input)}, mask, {OverT(op)});"
            : $"{Kernels}SoftmaxKernels.ForwardAlong({c.Output(op)}, {c.Value(op.Input)}, {Along(op)});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            if (c.InputIsData(op)) return;
            c.Line(op.Ints.Count == 0
                ? $"if (n{op.Input}) {Kernels}{_kernel}.Backward(g{op.Input}, g{op.Id}, v{op.Id}, {Sizes(c, op)});"
                : IsOverSequence(op) ? $"if (n{op.Input}) {Kernels}SoftmaxKernels.BackwardAlong(g{op.Input}, g{op.Id}, v{op.Id}, {OverT(op)}, log: false);"
                : $"if (n{op.Input}) {Kernels}SoftmaxKernels.BackwardAlong(g{op.Input}, g{op.Id}, v{op.Id}, {Along(op)});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The device's outer, size, inner of a softmax along a dimension (over T: the batch, T, the rest).</summary>
        private static string GpuAlong(OpSpec op)
        {
            if (IsOverSequence(op)) return OverT(op);
            int axis = op.Ints[0];
            string outer = axis == 0 ? "batch" : $"batch * {Shapes.Size(op.OutShape.Take(axis))}";
            return $"{outer}, {Shapes.Dim(op.OutShape[axis])}, {Shapes.Size(op.OutShape.Skip(axis + 1))}";
        }

        private string Log => _kind == OpKind.LogSoftmax ? "true" : "false";

        /// <summary>Over the last dimension one thread per row; along another dimension (or over T, masked) one per column.</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op) => c.Launch(op.Ints.Count == 0
            ? $"K.SoftmaxForward({c.Output(op)}, {c.Value(op.Input)}, {c.Rows(op)}, {op.OutShape[op.OutShape.Count - 1]}, log: {Log});"
            : $"K.SoftmaxAlong({c.Output(op)}, {c.Value(op.Input)}, {(IsOverSequence(op) ? "Mask, true" : "default, false")}, {GpuAlong(op)}, log: {Log});");

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            if (c.InputIsData(op)) return;
            c.Launch(op.Ints.Count == 0
                ? $"K.SoftmaxBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {c.Value(op.Id)}, {c.Rows(op)}, {op.OutShape[op.OutShape.Count - 1]}, log: {Log});"
                : $"K.SoftmaxAlongBackward({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {c.Value(op.Id)}, {GpuAlong(op)}, log: {Log});");
        }

        // ONNX has both operators under these names; over T the additive mask (0 or float.MinValue) goes first.
        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            if (IsOverSequence(op))
            {
                c.Line($"g.Node(\"Add\", new[] {{ {c.Value(op.Input)}, {MaskFor(c, op, "mask_bias")} }}, \"v{op.Id}_masked\");");
                c.Line($"g.Node(\"Softmax\", new[] {{ \"v{op.Id}_masked\" }}, {c.Output(op)}, (\"axis\", 1));");
                return;
            }
            c.Line($"g.Node(\"{_name}\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}, (\"axis\", {(op.Ints.Count == 0 ? -1 : op.Ints[0] + 1)}));");
        }

        /// <summary>A [B, T] mask tensor of the graph (emitted name) unsqueezed to the rank of [B, ..op's shape] (emitted expression).</summary>
        internal static string MaskFor(OnnxContext c, OpSpec op, string mask)
        {
            int rank = op.InShape.Count + 1;
            if (rank == 2) return $"\"{mask}\"";
            c.Line($"g.Node(\"Unsqueeze\", new[] {{ \"{mask}\", g.Int64(true, {string.Join(", ", Enumerable.Range(2, rank - 2))}) }}, \"v{op.Id}_{mask}\");");
            return $"\"v{op.Id}_{mask}\"";
        }
    }
}
