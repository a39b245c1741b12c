using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[BatchNorm2d(features, eps, momentum)]</c> or <c>[LayerNorm(features, eps)]</c> (momentum 0), read from a layer's arguments.</summary>
    internal readonly record struct NormArgs(int Features, double Eps, double Momentum)
    {
        public static NormArgs Of(LayerSpec l) => new(l.Ints[0], l.Real, l.Real2);
    }

    /// <summary>
    /// Batch normalisation over the channels of [C, ...], as nn.BatchNorm1d/2d: batch statistics and running-statistic
    /// updates in training, the running statistics in evaluation. Saves the batch mean and inverse deviation per channel
    /// for backward. The kernels see [B, C, plane] with plane the product of the dimensions after C.
    /// </summary>
    internal abstract class BatchNormOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("features"), Argument.Real("eps", 1e-5, ArgumentRule.NonNegative), Argument.Real("momentum", 0.1) };

        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            int c = NormArgs.Of(l).Features;
            add("weight", new[] { c }, "NormWeight", "Ones");
            add("bias", new[] { c }, "NormBias", "Zeros");
            add("running_mean", new[] { c }, "RunningMean", "Zeros", true);
            add("running_var", new[] { c }, "RunningVar", "Ones", true);
            add("num_batches_tracked", System.Array.Empty<int>(), "BatchesTracked", "Zeros", true);
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = NormArgs.Of(l);
            return $"new {Runtime}{l.Kind}(_store, {stateName}, {a.Features}, {FloatLiteral(a.Eps)}, {FloatLiteral(a.Momentum)})";
        }

        /// <summary>The per-sample ranks it takes, as messages show them.</summary>
        protected abstract bool Fits(int rank);
        protected abstract string ExpectedShape { get; }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            int features = NormArgs.Of(a.Spec).Features;
            var shape = a.Shape;
            string who = $"{a.Who} ({Name})";
            if (!Fits(shape.Length)) { walker.Rank(a.Invocation, who, ExpectedShape, shape); return -1; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, $"it needs fixed {ExpectedShape} sizes", shape); return -1; }
            if (shape[0] != features)
            {
                if (!walker.Parser.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("features"), ForwardWalker.Int(shape[0]), a.Who, $"{features} channels ({Name}({features}))", walker.Producer(a.Input),
                    $"{shape[0]} channels ({NetworkParser.Shape(shape)})", walker.InputText, "")) return -1;
            }
            return walker.Parser.AddOp(Kind, a.Input, -1, a.Layer.Layer, shape, shape, System.Array.Empty<int>(), 0, a.Who);
        }

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op)
        {
            regions.AddStats($"sm{op.Id}", op.OutShape[0]);
            regions.AddStats($"si{op.Id}", op.OutShape[0]);
        }

        private static int Plane(OpSpec op) => Shapes.Product(op.InShape.Skip(1));

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = NormArgs.Of(c.Layer(op));
            string y = c.Output(op), x = c.Value(op.Input);
            string channels = IntLiteral(op.InShape[0]), plane = IntLiteral(Plane(op));
            if (c.Training)
            {
                c.Line($"{Kernels}BatchNormKernels.ForwardTraining({y}, sm{op.Id}, si{op.Id}, {c.Read(op, "running_mean")}, {c.Read(op, "running_var")}, {x}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, batch, {channels}, {plane}, {FloatLiteral(a.Eps)}, {FloatLiteral(a.Momentum)});");
                c.Line($"{c.Read(op, "num_batches_tracked")}[0] += 1f;");
            }
            else
                c.Line($"{Kernels}BatchNormKernels.ForwardInference({y}, {x}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Read(op, "running_mean")}, {c.Read(op, "running_var")}, batch, {channels}, {plane}, {FloatLiteral(a.Eps)});");
        }

        public override void EmitBackward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}BatchNormKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, {c.Gradient(op, "bias")}, g{op.Id}, {c.Value(op.Input)}, sm{op.Id}, si{op.Id}, {c.Read(op, "weight")}, batch, {op.InShape[0]}, {Plane(op)});");

        public override bool OnGpu => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var a = NormArgs.Of(c.Layer(op));
            string state = c.State($"_bn{op.Id}", $"{Gpu}GpuKernels.BatchNormState({op.InShape[0]})");
            string sizes = $"batch, {op.InShape[0]}, {Plane(op)}";
            c.Line("if (training)");
            c.Launch($"    K.BatchNormForwardTraining({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Read(op, "running_mean")}, {c.Read(op, "running_var")}, {c.Read(op, "num_batches_tracked")}, {state}, {sizes}, {FloatLiteral(a.Eps)}, {FloatLiteral(a.Momentum)});", 2);
            c.Line("else");
            c.Line($"    K.BatchNormForwardInference({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Read(op, "running_mean")}, {c.Read(op, "running_var")}, {sizes}, {FloatLiteral(a.Eps)});");
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op) =>
            c.Launch($"K.BatchNormBackward({c.GradientIfNeeded(op.Input)}, {c.ParameterGradient(op, "weight")}, {c.ParameterGradient(op, "bias")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, _bn{op.Id}, batch, {op.InShape[0]}, {Plane(op)});", 2);

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"BatchNormalization\", new[] {{ {c.Value(op.Input)}, {c.Initializer(op, "weight")}, {c.Initializer(op, "bias")}, {c.Initializer(op, "running_mean")}, {c.Initializer(op, "running_var")} }}, {c.Output(op)}, (\"epsilon\", {FloatLiteral(NormArgs.Of(c.Layer(op)).Eps)}));");
    }

    /// <summary>BatchNorm2d on [C, H, W].</summary>
    internal sealed class BatchNorm2dOp : BatchNormOp
    {
        public override OpKind Kind => OpKind.BatchNorm2d;
        public override string Name => "BatchNorm2d";
        public override LayerKind? Layer => LayerKind.BatchNorm2d;
        protected override bool Fits(int rank) => rank == 3;
        protected override string ExpectedShape => "[C, H, W]";
    }

    /// <summary>BatchNorm1d on [C] (features) or [C, L] (channels of a signal), as nn.BatchNorm1d.</summary>
    internal sealed class BatchNorm1dOp : BatchNormOp
    {
        public override OpKind Kind => OpKind.BatchNorm1d;
        public override string Name => "BatchNorm1d";
        public override LayerKind? Layer => LayerKind.BatchNorm1d;
        protected override bool Fits(int rank) => rank is 1 or 2;
        protected override string ExpectedShape => "[C] or [C, L]";
    }

    /// <summary>LayerNorm over the last dimension, as nn.LayerNorm; saves each row's mean and inverse deviation for backward.</summary>
    internal sealed class LayerNormOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("features"), Argument.Real("eps", 1e-5, ArgumentRule.NonNegative) };

        public override OpKind Kind => OpKind.LayerNorm;
        public override string Name => "LayerNorm";
        public override LayerKind? Layer => LayerKind.LayerNorm;
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            int f = NormArgs.Of(l).Features;
            add("weight", new[] { f }, "NormWeight", "Ones");
            add("bias", new[] { f }, "NormBias", "Zeros");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = NormArgs.Of(l);
            return $"new {Runtime}LayerNorm(_store, {stateName}, {a.Features}, {FloatLiteral(a.Eps)})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            int features = NormArgs.Of(a.Spec).Features;
            var shape = a.Shape;
            if (shape[shape.Length - 1] == Shapes.Sequence) { walker.Sequence(a.Invocation, $"{a.Who} (LayerNorm)", "it normalises a fixed number of features", shape); return -1; }
            if (shape[shape.Length - 1] != features)
            {
                if (!walker.Parser.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("features"), walker.FeatureFix(a.Input, shape), a.Who, $"{features} features (LayerNorm({features}))",
                    walker.Producer(a.Input), walker.FeatureText(a.Input, shape), walker.InputText, "")) return -1;
            }
            return walker.Parser.AddOp(OpKind.LayerNorm, a.Input, -1, a.Layer.Layer, shape, shape, System.Array.Empty<int>(), 0, a.Who);
        }

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op)
        {
            var rows = op.OutShape.Take(op.OutShape.Count - 1).ToList();
            regions.Add($"mean{op.Id}", rows);
            regions.Add($"rstd{op.Id}", rows);
        }

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = NormArgs.Of(c.Layer(op));
            c.Line($"{Kernels}LayerNormKernels.Forward({c.Output(op)}, {(c.Training ? $"mean{op.Id}" : "default")}, {(c.Training ? $"rstd{op.Id}" : "default")}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Rows(op)}, {a.Features}, {FloatLiteral(a.Eps)});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            var a = NormArgs.Of(c.Layer(op));
            long rows = Shapes.MaxSize(c.Spec, op.OutShape.Take(op.OutShape.Count - 1));
            string statistics = $"{c.Region($"_mean{op.Id}", rows)}, {c.Region($"_rstd{op.Id}", rows)}";
            if (c.Plan.NormOfSumOf(op.Id) is { Branch: >= 0 } fused)
            {
                var b = Branch(c, fused);
                c.Launch($"K.LayerNormOfBranchForward({c.Output(op)}, {statistics}, {c.Output(b.Add)}, {c.Output(b.Linear)}, {(b.Biased ? c.Read(b.Linear, "bias") : "default")}, {c.Value(b.Residual)}, " +
                    $"{c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Rows(op)}, {a.Features}, {FloatLiteral(a.Eps)}, {(b.Dropout is { } d ? $"training ? {FloatLiteral(d.P)} : 0f" : "0f")}, StepKey, {b.Stream}); // {b.Title} and the residual add as it reads");
                return;
            }
            if (c.Plan.AddOfNorm(op.Id) is int id)
            {
                var add = c.Spec.Ops[id];
                c.Launch($"K.LayerNormOfSumForward({c.Output(op)}, {statistics}, {c.Output(add)}, {c.Value(add.Input)}, {c.Value(add.Input2)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Rows(op)}, {a.Features}, {FloatLiteral(a.Eps)}); // the residual add as it reads");
                return;
            }
            c.Launch($"K.LayerNormForward({c.Output(op)}, {statistics}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {c.Rows(op)}, {a.Features}, {FloatLiteral(a.Eps)});");
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            string tail = $"{c.ParameterGradient(op, "weight")}, {c.ParameterGradient(op, "bias")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, _mean{op.Id}, _rstd{op.Id}, {c.Read(op, "weight")}, {c.Rows(op)}, {NormArgs.Of(c.Layer(op)).Features}";
            if (c.Plan.NormOfSumOf(op.Id) is { Branch: >= 0 } fused)
            {
                var b = Branch(c, fused);
                c.Launch($"K.LayerNormOfBranchBackward({c.GradientIfNeeded(b.Linear.Id)}, {c.GradientIfNeeded(b.Residual)}, {c.ParameterGradient(op, "weight")}, {c.ParameterGradient(op, "bias")}, " +
                    $"{(b.Biased ? c.ParameterGradient(b.Linear, "bias") : "default")}, {c.Gradient(op.Id)}, {c.Value(b.Add.Id)}, _mean{op.Id}, _rstd{op.Id}, {c.Read(op, "weight")}, {c.Rows(op)}, {NormArgs.Of(c.Layer(op)).Features}, " +
                    $"{(b.Dropout is { } d ? FloatLiteral(d.P) : "0f")}, StepKey, {b.Stream}); // to the residual and, through {b.Title}, to {b.Linear.Label}'s output", 2);
                return;
            }
            if (c.Plan.AddOfNorm(op.Id) is int id)
            {
                var add = c.Spec.Ops[id];
                bool da = !c.IsData(add.Input), db = !c.IsData(add.Input2);
                c.Launch($"K.LayerNormOfSumBackward({c.GradientIfNeeded(add.Input)}, {c.GradientIfNeeded(add.Input2)}, {tail}); // to both operands of the residual add",
                    da || db ? 2 : 1);
                return;
            }
            c.Launch($"K.LayerNormBackward({c.GradientIfNeeded(op.Input)}, {tail});", c.InputIsData(op) ? 1 : 2);
        }

        /// <summary>A norm-of-sum's branch: the add, the Linear, the other operand, and the chain's bias and dropout
        /// (whose op id is its Philox stream, as in the chain's own kernel).</summary>
        private static (OpSpec Add, OpSpec Linear, int Residual, bool Biased, PlanStage? Dropout, int Stream, string Title) Branch(GpuContext c, NormOfSum fused)
        {
            var add = c.Spec.Ops[fused.Add];
            var unit = c.Plan.Units.First(u => u.Primary?.Id == fused.Branch);
            var dropout = unit.Stages.FirstOrDefault(st => !st.IsBias);
            return (add, unit.Primary!, add.Input == fused.BranchValue ? add.Input2 : add.Input, unit.StartsWithBias, dropout, dropout?.Value ?? 0,
                string.Join(" + ", unit.Stages.Select(st => st.Title.ToLowerInvariant())));
        }

        public override void EmitBackward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}LayerNormKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, {c.Gradient(op, "bias")}, g{op.Id}, {c.Value(op.Input)}, mean{op.Id}, rstd{op.Id}, {c.Read(op, "weight")}, {c.Rows(op)}, {NormArgs.Of(c.Layer(op)).Features});");

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"LayerNormalization\", new[] {{ {c.Value(op.Input)}, {c.Initializer(op, "weight")}, {c.Initializer(op, "bias")} }}, {c.Output(op)}, (\"axis\", -1), (\"epsilon\", {FloatLiteral(NormArgs.Of(c.Layer(op)).Eps)}));");
    }

    /// <summary>
    /// <c>[GroupNorm(numGroups, numChannels, eps)]</c> (nn.GroupNorm) over [C, …]: each sample's group of C/G channels
    /// normalised over its channels and positions, then scaled and shifted per channel. Saves mean and 1/σ per group.
    /// </summary>
    internal sealed class GroupNormOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("numGroups"), Argument.Int("numChannels"), Argument.Real("eps", 1e-5, ArgumentRule.NonNegative) };

        public override OpKind Kind => OpKind.GroupNorm;
        public override string Name => "GroupNorm";
        public override LayerKind? Layer => LayerKind.GroupNorm;
        public override IReadOnlyList<Argument> Arguments => s_arguments;

        private static (int Groups, int Channels, double Eps) Args(LayerSpec l) => (l.Ints[0], l.Ints[1], l.Real);

        public override bool Check(NetworkParser parser, LayerDeclaration d)
        {
            if (d.Ints[1] % d.Ints[0] == 0) return true;
            parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, d.Args.Location("numGroups"), d.Property, $"{d.Ints[0]} groups do not divide {d.Ints[1]} channels");
            return false;
        }

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            int c = Args(l).Channels;
            add("weight", new[] { c }, "NormWeight", "Ones");
            add("bias", new[] { c }, "NormBias", "Zeros");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = Args(l);
            return $"new {Runtime}GroupNorm(_store, {stateName}, {a.Groups}, {a.Channels}, {FloatLiteral(a.Eps)})";
        }

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var (groups, channels, _) = Args(a.Spec);
            var shape = a.Shape;
            string who = $"{a.Who} (GroupNorm)";
            if (Shapes.HasSequence(shape)) { walker.Sequence(a.Invocation, who, "it normalises fixed [C, …] groups", shape); return -1; }
            if (shape[0] != channels &&
                !walker.Parser.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("numChannels"), ForwardWalker.Int(shape[0]), a.Who, $"{channels} channels (GroupNorm({groups}, {channels}))",
                    walker.Producer(a.Input), $"{shape[0]} channels ({NetworkParser.Shape(shape)})", walker.InputText, ""))
                return -1;
            return walker.Parser.AddOp(OpKind.GroupNorm, a.Input, -1, a.Layer.Layer, shape, shape, System.Array.Empty<int>(), 0, a.Who);
        }

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op)
        {
            int groups = Args(s.Layers[op.Layer]).Groups;
            regions.Add($"mean{op.Id}", new[] { groups });
            regions.Add($"rstd{op.Id}", new[] { groups });
        }

        private static string Sizes(EmitContext c, OpSpec op)
        {
            var (groups, channels, _) = Args(c.Layer(op));
            return $"batch, {channels}, {Shapes.Product(op.InShape.Skip(1))}, {groups}";
        }

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}GroupNormKernels.Forward({c.Output(op)}, {(c.Training ? $"mean{op.Id}" : "default")}, {(c.Training ? $"rstd{op.Id}" : "default")}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {Sizes(c, op)}, {FloatLiteral(Args(c.Layer(op)).Eps)});");

        public override bool OnGpu => true;

        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            int groups = Args(c.Layer(op)).Groups;
            c.Launch($"K.GroupNormForward({c.Output(op)}, {c.Region($"_mean{op.Id}", groups)}, {c.Region($"_rstd{op.Id}", groups)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Read(op, "bias")}, {Sizes(c, op)}, {FloatLiteral(Args(c.Layer(op)).Eps)});", 2);
        }

        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            int groups = Args(c.Layer(op)).Groups;
            bool dx = !c.InputIsData(op);
            c.Launch($"K.GroupNormBackward({c.GradientIfNeeded(op.Input)}, {c.ParameterGradient(op, "weight")}, {c.ParameterGradient(op, "bias")}, {c.Gradient(op.Id)}, {c.Value(op.Input)}, _mean{op.Id}, _rstd{op.Id}, {c.Read(op, "weight")}, {c.Region($"_sums{op.Id}", 2 * groups)}, {Sizes(c, op)});",
                dx ? 3 : 1);
        }

        public override void EmitBackward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}GroupNormKernels.Backward({c.InputGradient(op)}, {c.Gradient(op, "weight")}, {c.Gradient(op, "bias")}, g{op.Id}, {c.Value(op.Input)}, mean{op.Id}, rstd{op.Id}, {c.Read(op, "weight")}, {Sizes(c, op)});");

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            // Opset 17 has no GroupNormalization: the mean and variance of each [B, G, C/G·S] group, then the affine.
            var (groups, channels, eps) = Args(c.Layer(op));
            string v = $"v{op.Id}", ones = string.Concat(op.InShape.Skip(1).Select(_ => ", 1"));
            c.Line($"g.Node(\"Reshape\", new[] {{ {c.Value(op.Input)}, g.Int64(true, 0, {groups}, -1) }}, \"{v}_groups\");");
            c.Line($"g.Node(\"ReduceMean\", new[] {{ \"{v}_groups\" }}, \"{v}_mean\", (\"axes\", new int[] {{ 2 }}), (\"keepdims\", 1));");
            c.Line($"g.Node(\"Sub\", new[] {{ \"{v}_groups\", \"{v}_mean\" }}, \"{v}_centred\");");
            c.Line($"g.Node(\"Mul\", new[] {{ \"{v}_centred\", \"{v}_centred\" }}, \"{v}_squares\");");
            c.Line($"g.Node(\"ReduceMean\", new[] {{ \"{v}_squares\" }}, \"{v}_variance\", (\"axes\", new int[] {{ 2 }}), (\"keepdims\", 1));");
            c.Line($"g.Node(\"Add\", new[] {{ \"{v}_variance\", g.Scalar({FloatLiteral(eps)}) }}, \"{v}_shifted\");");
            c.Line($"g.Node(\"Sqrt\", new[] {{ \"{v}_shifted\" }}, \"{v}_deviation\");");
            c.Line($"g.Node(\"Div\", new[] {{ \"{v}_centred\", \"{v}_deviation\" }}, \"{v}_normalised\");");
            c.Line($"g.Node(\"Reshape\", new[] {{ \"{v}_normalised\", g.Int64(true, 0, {string.Join(", ", op.InShape)}) }}, \"{v}_unflat\");");
            c.Line($"g.Node(\"Mul\", new[] {{ \"{v}_unflat\", g.Initializer(\"{v}.weight\", {c.Read(op, "weight")}, {channels}{ones}) }}, \"{v}_scaled\");");
            c.Line($"g.Node(\"Add\", new[] {{ \"{v}_scaled\", g.Initializer(\"{v}.bias\", {c.Read(op, "bias")}, {channels}{ones}) }}, {c.Output(op)});");
        }
    }
}
