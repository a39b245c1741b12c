using System;
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
    /// Arithmetic with a constant in Forward: <c>x * c</c>, <c>c * x</c>, <c>x / c</c> scale (the op's <c>Real</c> is the
    /// factor), <c>x + c</c>, <c>x - c</c> shift, and <c>c - x</c> is both. Elementwise stages of the fused chain whose
    /// backward reads nothing (the gradient is scaled, or passes through).
    /// </summary>
    internal sealed class ScalarOp : OpDefinition
    {
        private readonly bool _scale;

        public ScalarOp(bool scale) { _scale = scale; }

        public override OpKind Kind => _scale ? OpKind.Scale : OpKind.Shift;
        public override string Name => _scale ? "Scale" : "Shift";
        public override string? ProducerName => _scale ? "the scaling" : "the shift";
        public override bool IsElementwise => true;
        public override GradientSource GradientSource => GradientSource.None;
        public override bool OnGpu => true;

        /// <summary>The grammar: the arithmetic operators with a constant operand.</summary>
        public const string Usage = "x * c, x / c, x + c, x - c, c - x (c a constant)";

        /// <summary>
        /// <c>tensor op constant</c> or <c>constant op tensor</c> (<paramref name="constantOnLeft"/>), as one or two
        /// stages; -1 after reporting (division by zero, a constant divided by a tensor, token ids).
        /// </summary>
        public static int Combine(ForwardWalker walker, BinaryExpressionSyntax expression, int x, double c, bool constantOnLeft)
        {
            var p = walker.Parser;
            if (p.IsTokens(x)) { walker.Unsupported(expression, "token ids can only feed an Embedding layer"); return -1; }
            var shape = p.ShapeOf(x);
            // The factor or shift the generated code holds as a float (1 / c included): finite, or an error at the constant.
            bool divide = expression.Kind() == Microsoft.CodeAnalysis.CSharp.SyntaxKind.DivideExpression && c != 0;
            if (!walker.Finite(divide ? 1 / c : c, constantOnLeft ? expression.Left : expression.Right, expression.OperatorToken.Text,
                    divide ? $"dividing by {c.ToString(System.Globalization.CultureInfo.InvariantCulture)} scales by {(1 / c).ToString(System.Globalization.CultureInfo.InvariantCulture)}, which" : null)) return -1;
            int Add(OpKind kind, int input, double value) => p.AddOp(kind, input, -1, -1, shape, shape, Array.Empty<int>(), value, (kind == OpKind.Scale ? "× " : "+ ") + Format(value));
            switch (expression.Kind())
            {
                case Microsoft.CodeAnalysis.CSharp.SyntaxKind.MultiplyExpression:
                    return Add(OpKind.Scale, x, c);
                case Microsoft.CodeAnalysis.CSharp.SyntaxKind.DivideExpression:
                    if (constantOnLeft) { walker.Unsupported(expression, "a constant divided by a tensor is not compiled; scale by a constant instead"); return -1; }
                    if (c == 0)
                    {
                        p.ReportPublic(DiagnosticDescriptors.InvalidArgument, ForwardWalker.Location(expression.Right), "/", "division by zero");
                        return -1;
                    }
                    return Add(OpKind.Scale, x, 1 / c);
                case Microsoft.CodeAnalysis.CSharp.SyntaxKind.AddExpression:
                    return Add(OpKind.Shift, x, c);
                default: // subtraction
                    // 0 - x is a negation alone (no shift by zero).
                    return constantOnLeft ? (c == 0 ? Add(OpKind.Scale, x, -1) : Add(OpKind.Shift, Add(OpKind.Scale, x, -1), c)) : Add(OpKind.Shift, x, -c);
            }
        }

        private static string Format(double v) => ((float)v).ToString("R", System.Globalization.CultureInfo.InvariantCulture);

        public override string StageForward(PlanStage stage, string t, bool vector, bool training, string index) => _scale
            ? $"{t} *= {FloatLiteral(stage.P)};"
            : vector ? $"{t} += {Vector512}.Create({FloatLiteral(stage.P)});" : $"{t} += {FloatLiteral(stage.P)};";

        public override string StageBackward(PlanStage stage, int previousValue, Func<string, string> load) => _scale
            ? $"g *= {FloatLiteral(stage.P)};"
            : "// shift: the gradient passes through";

        public override void EmitOnnx(OnnxContext c, OpSpec op) =>
            c.Line($"g.Node(\"{(_scale ? "Mul" : "Add")}\", new[] {{ {c.Value(op.Input)}, g.Scalar({FloatLiteral(op.Real)}) }}, {c.Output(op)});");
    }
}
