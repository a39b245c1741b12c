using System;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>Dropout (inverted: kept values scaled by 1/(1-p)); the identity in evaluation mode. Its mask is saved for
    /// backward. Dropout2d is the same stage with a mask drawn per channel of each sample.</summary>
    internal class DropoutOp : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Real("p", 0.5, ArgumentRule.Probability) };

        public override OpKind Kind => OpKind.Dropout;
        public override string Name => "Dropout";
        public override LayerKind? Layer => LayerKind.Dropout;
        public override string? Method => "Dropout";
        public override string? MethodUsage => Method + "(p)";
        public override System.Collections.Generic.IReadOnlyList<Argument> Arguments => s_arguments;
        public override bool IsElementwise => true;
        public override GradientSource GradientSource => GradientSource.Mask;

        public override string Construct(LayerSpec l, string stateName) => $"new {Runtime}{Name}({l.Real.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})";

        /// <summary>The shape the op takes; false after reporting (Dropout2d needs channels).</summary>
        protected virtual bool CheckShape(ForwardWalker walker, InvocationExpressionSyntax at, string who, int[] shape) => true;

        public override int Apply(ForwardWalker walker, LayerApplication a) => !CheckShape(walker, a.Invocation, $"{a.Who} ({Name})", a.Shape) ? -1
            : walker.Parser.AddOp(Kind, a.Input, -1, a.Layer.Layer, a.Shape, a.Shape, Array.Empty<int>(), a.Spec.Real, a.Who);

        public override int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape)
        {
            var args = invocation.ArgumentList.Arguments;
            if (args.Count != 1 || walker.Constant(args[0].Expression) is not { HasValue: true, Value: { } pv })
            {
                walker.Unsupported(invocation, $"{Name} needs one constant probability");
                return -1;
            }
            double p = Convert.ToDouble(pv, System.Globalization.CultureInfo.InvariantCulture);
            if (!(p >= 0 && p < 1))
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(args[0]), Name, $"probability {p.ToString(System.Globalization.CultureInfo.InvariantCulture)} is outside [0, 1)");
                return -1;
            }
            if (!CheckShape(walker, invocation, Name, shape)) return -1;
            return walker.Parser.AddOp(Kind, x, -1, -1, shape, shape, Array.Empty<int>(), p, Name);
        }

        public override void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op) => regions.Add($"m{op.Id}", op.OutShape);

        /// <summary>Before the fused loop: draw this step's mask (per element, or per channel for Dropout2d).</summary>
        public static string FillMask(NetworkSpec s, PlanStage stage) => stage.Kind == OpKind.Dropout2d
            ? $"{Kernels}DropoutKernels.FillChannelMask(m{stage.Value}, {Helpers.SourceWriter.FloatLiteral(stage.P)}, {Shapes.Product(s.Ops[stage.Value].OutShape.Skip(1))}, _rng);"
            : $"{Kernels}DropoutKernels.FillMask(m{stage.Value}, {Helpers.SourceWriter.FloatLiteral(stage.P)}, _rng);";

        public override string StageForward(PlanStage stage, string t, bool vector, bool training, string index)
        {
            if (!training) return $"// v{stage.Value}: dropout is the identity in evaluation mode";
            return vector ? $"{t} *= {Vector512}.LoadUnsafe(ref m{stage.Value}_, (nuint){index});" : $"{t} *= {Unsafe}.Add(ref m{stage.Value}_, {index});";
        }

        public override string StageBackward(PlanStage stage, int previousValue, Func<string, string> load) => $"g *= {load("m" + stage.Value)};";

        public override bool OnGpu => true;

        /// <summary>On the device the fused kernel draws the mask itself, from Philox under the step's key (the op id as
        /// its stream), and stores it for backward; in evaluation mode the mask is 1.</summary>
        public override string GpuStageForward(NetworkSpec s, PlanStage stage, string t)
        {
            string keep = Helpers.SourceWriter.FloatLiteral(1 / (1 - stage.P));
            return $"float keep{stage.Value} = training != 0 ? ({Gpu}Philox.Uniform(key, {MaskCounter(s, stage)}, {stage.Value}) < {Helpers.SourceWriter.FloatLiteral(stage.P)} ? 0f : {keep}) : 1f; m{stage.Value}[i] = keep{stage.Value}; {t} *= keep{stage.Value};";
        }

        /// <summary>The Philox counter element i draws its mask under: its own index, or (Dropout2d) its channel's.</summary>
        protected virtual string MaskCounter(NetworkSpec s, PlanStage stage) => "i";

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line($"g.Node(\"Identity\", new[] {{ {c.Value(op.Input)} }}, {c.Output(op)}); // dropout is off in evaluation");
    }

    /// <summary><c>[Dropout2d(p)]</c> / <c>x.Dropout2d(p)</c> (nn.Dropout2d) over [C, …]: a whole channel of a sample
    /// kept or dropped (on the device every element of a channel draws under the channel's Philox counter).</summary>
    internal sealed class Dropout2dOp : DropoutOp
    {
        public override OpKind Kind => OpKind.Dropout2d;
        public override string Name => "Dropout2d";
        public override LayerKind? Layer => LayerKind.Dropout2d;
        public override string? Method => "Dropout2d";
        /// <summary>(sample·C + c): the element's index over the plane after the channel.</summary>
        protected override string MaskCounter(NetworkSpec s, PlanStage stage) => $"i / {Shapes.Product(s.Ops[stage.Value].OutShape.Skip(1))}";

        protected override bool CheckShape(ForwardWalker walker, InvocationExpressionSyntax at, string who, int[] shape)
        {
            if (shape.Length < 2) { walker.Rank(at, who, "[C, H, W] or [C, L] (channels first)", shape); return false; }
            if (Shapes.HasSequence(shape)) { walker.Sequence(at, who, "channels need fixed sizes", shape); return false; }
            return true;
        }
    }
}
