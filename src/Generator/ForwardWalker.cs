using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Reads a <c>Forward</c> body as a specification: each expression becomes ops in the plan, with per-sample shapes
    /// checked as they are propagated. A value is an op id; -1 means "an error was already reported here".
    /// </summary>
    internal sealed class ForwardWalker
    {
        private readonly NetworkParser _p;
        private readonly SemanticModel _model;
        private readonly Dictionary<string, NetworkParser.LayerRef> _layers;
        private readonly string _inputText;

        public ForwardWalker(NetworkParser parser, SemanticModel model, Dictionary<string, NetworkParser.LayerRef> layers, string inputText)
        {
            _p = parser; _model = model; _layers = layers; _inputText = inputText;
        }

        private static LocationInfo? L(SyntaxNode n) => LocationInfo.From(n);

        /// <summary>A constant argument: literals read from the syntax (the generator parses every network on every
        /// edit, and a semantic query binds the whole Forward body), anything else through the semantic model.</summary>
        private Optional<object?> Constant(ExpressionSyntax e) => e switch
        {
            LiteralExpressionSyntax { RawKind: (int)SyntaxKind.NumericLiteralExpression } literal => new Optional<object?>(literal.Token.Value),
            _ => _model.GetConstantValue(e),
        };

        private void Unsupported(SyntaxNode node, string why) =>
            _p.ReportPublic(DiagnosticDescriptors.UnsupportedOp, L(node), Quote(node), why);

        /// <summary>The flagged code as one line (a command-line build cuts a message at its first line break), elided.</summary>
        internal static string Quote(SyntaxNode node)
        {
            string text = node.ToString();
            int newline = text.IndexOfAny(new[] { '\r', '\n' });
            bool cut = newline >= 0;
            if (cut) text = text.Substring(0, newline).TrimEnd();
            if (text.Length > 60) { text = text.Substring(0, 57); cut = true; }
            return cut ? text + " …" : text;
        }

        public int Body(MethodDeclarationSyntax method, Dictionary<string, int> env, object resultHolder)
        {
            var holder = (IReturnLocationSink)resultHolder; // the parser's BodyResult
            if (method.ExpressionBody is { } eb)
            {
                holder.Set(L(eb.Expression));
                return Expr(eb.Expression, env);
            }
            if (method.Body is null) { Unsupported(method, "Forward needs a body"); return -1; }
            foreach (var st in method.Body.Statements)
            {
                switch (st)
                {
                    case LocalDeclarationStatementSyntax local:
                        foreach (var v in local.Declaration.Variables)
                        {
                            if (v.Initializer is null) { Unsupported(v, "locals must be initialised"); return -1; }
                            int id = Expr(v.Initializer.Value, env);
                            if (id < 0) return -1;
                            env[v.Identifier.Text] = id;
                        }
                        break;
                    case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { RawKind: (int)SyntaxKind.SimpleAssignmentExpression } asg }
                        when asg.Left is IdentifierNameSyntax target:
                    {
                        int id = Expr(asg.Right, env);
                        if (id < 0) return -1;
                        env[target.Identifier.Text] = id;
                        break;
                    }
                    case ReturnStatementSyntax ret when ret.Expression is not null:
                        holder.Set(L(ret.Expression));
                        return Expr(ret.Expression, env);
                    default:
                        Unsupported(st, "only local declarations, assignments and a final return are understood");
                        return -1;
                }
            }
            Unsupported(method, "Forward must end with a return statement");
            return -1;
        }

        private int Expr(ExpressionSyntax e, Dictionary<string, int> env)
        {
            switch (e)
            {
                case ParenthesizedExpressionSyntax par:
                    return Expr(par.Expression, env);
                case IdentifierNameSyntax id:
                    if (env.TryGetValue(id.Identifier.Text, out int v)) return v;
                    Unsupported(id, "it is not the input or a local tensor");
                    return -1;
                case BinaryExpressionSyntax bin when bin.IsKind(SyntaxKind.AddExpression):
                {
                    int a = Expr(bin.Left, env); if (a < 0) return -1;
                    int b = Expr(bin.Right, env); if (b < 0) return -1;
                    if (_p.IsTokens(a) || _p.IsTokens(b)) { Unsupported(bin, "token ids can only feed an Embedding layer"); return -1; }
                    var sa = _p.ShapeOf(a); var sb = _p.ShapeOf(b);
                    if (!sa.SequenceEqual(sb))
                    {
                        _p.ReportPublic(DiagnosticDescriptors.AddShapeMismatch, L(bin), NetworkParser.ShapeBracket(sa), Quote(bin.Left), NetworkParser.ShapeBracket(sb), Quote(bin.Right));
                        return -1;
                    }
                    return _p.AddOp(OpKind.Add, a, b, -1, sa, sa, Array.Empty<int>(), 0, "add");
                }
                case InvocationExpressionSyntax inv when inv.Expression is MemberAccessExpressionSyntax ma:
                {
                    // Tensor.Cat(a, b) and other static calls: name the call, not its receiver type.
                    if (ma.Expression is NameSyntax receiver && !(receiver is IdentifierNameSyntax local && env.ContainsKey(local.Identifier.Text))
                        && _model.GetSymbolInfo(receiver).Symbol is ITypeSymbol or INamespaceSymbol)
                    {
                        Unsupported(inv, $"{ma} is not an operation the generator compiles (tensor operations are called on a tensor: x.Relu())");
                        return -1;
                    }
                    int x = Expr(ma.Expression, env);
                    if (x < 0) return -1;
                    return Call(inv, ma.Name.Identifier.Text, x);
                }
                default:
                    Unsupported(e, "this kind of expression is not understood");
                    return -1;
            }
        }

        private int Call(InvocationExpressionSyntax inv, string method, int x)
        {
            var args = inv.ArgumentList.Arguments;
            var shape = _p.ShapeOf(x);
            if (_p.IsTokens(x) && !(method == "Apply" && args.Count == 1 && args[0].Expression is IdentifierNameSyntax n0
                    && _layers.TryGetValue(n0.Identifier.Text, out var l0) && l0.Layer >= 0 && _p.Layer(l0.Layer).Kind == LayerKind.Embedding))
            {
                Unsupported(inv, "token ids can only feed an Embedding layer");
                return -1;
            }
            switch (method)
            {
                case "Apply":
                {
                    if (args.Count != 1 || args[0].Expression is not IdentifierNameSyntax name || !_layers.TryGetValue(name.Identifier.Text, out var layer))
                    {
                        Unsupported(inv, "Apply takes one layer property declared with a layer attribute or [SubNetwork]");
                        return -1;
                    }
                    layer.Used = true;
                    if (layer.Layer < 0) return -1; // its declaration already carries the error
                    var spec = _p.Layer(layer.Layer);
                    if (spec.Kind == LayerKind.SubNetwork) return _p.Inline(layer, x, L(args[0]), _inputText);
                    return ApplyLayer(inv, layer, spec, x, shape);
                }
                case "Relu": return NoArgs(inv, OpKind.Relu, "Relu", x, shape);
                case "Gelu": return NoArgs(inv, OpKind.Gelu, "Gelu", x, shape);
                case "Tanh": return NoArgs(inv, OpKind.Tanh, "Tanh", x, shape);
                case "Sigmoid": return NoArgs(inv, OpKind.Sigmoid, "Sigmoid", x, shape);
                case "Softmax": return NoArgs(inv, OpKind.Softmax, "Softmax", x, shape);
                case "Flatten":
                    if (args.Count != 0) { Unsupported(inv, "Flatten() takes no arguments"); return -1; }
                    if (NetworkParser.HasSequence(shape)) { Sequence(inv, "Flatten", "the flattened size would depend on the sequence length; reduce T first with SelectToken(i) or MeanOverSequence()", shape); return -1; }
                    return _p.AddOp(OpKind.Flatten, x, -1, -1, shape, new[] { shape.Aggregate(1, (a, b) => a * b) }, Array.Empty<int>(), 0, "Flatten");
                case "MaxPool2d":
                case "AvgPool2d":
                {
                    if (!ConstInts(inv, new[] { "kernel", "stride", "padding" }, out var vals)) return -1;
                    int k = vals[0] ?? 0, s = vals[1] ?? 0, pad = vals[2] ?? 0;
                    if (vals[0] is null) { Unsupported(inv, $"{method} needs a constant kernel size"); return -1; }
                    if (k <= 0 || s < 0 || pad < 0) { _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(inv), method, "kernel must be positive, stride and padding not negative"); return -1; }
                    return Pool(inv, method == "MaxPool2d" ? OpKind.MaxPool2d : OpKind.AvgPool2d, method, x, shape, k, s == 0 ? k : s, pad, L(inv.ArgumentList));
                }
                case "SelectToken":
                {
                    if (args.Count != 1 || Constant(args[0].Expression) is not { HasValue: true, Value: int position })
                    {
                        Unsupported(inv, "SelectToken needs one constant position");
                        return -1;
                    }
                    if (shape.Length < 2 || shape[0] != NetworkParser.Sequence) { Rank(inv, "SelectToken", "[T, ...] (a sequence of vectors)", shape); return -1; }
                    if (position < 0 || position >= _p.MaxSequence)
                    {
                        _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(args[0]), "SelectToken", $"position {position} is outside [0, {_p.MaxSequence}) (MaxSequence)");
                        return -1;
                    }
                    return _p.AddOp(OpKind.SelectToken, x, -1, -1, shape, shape.Skip(1).ToArray(), new[] { position }, 0, "SelectToken");
                }
                case "MeanOverSequence":
                    if (args.Count != 0) { Unsupported(inv, "MeanOverSequence() takes no arguments"); return -1; }
                    if (shape.Length < 2 || shape[0] != NetworkParser.Sequence) { Rank(inv, "MeanOverSequence", "[T, ...] (a sequence of vectors)", shape); return -1; }
                    return _p.AddOp(OpKind.MeanOverSequence, x, -1, -1, shape, shape.Skip(1).ToArray(), Array.Empty<int>(), 0, "MeanOverSequence");
                case "Dropout":
                {
                    if (args.Count != 1 || Constant(args[0].Expression) is not { HasValue: true, Value: { } pv })
                    {
                        Unsupported(inv, "Dropout needs one constant probability");
                        return -1;
                    }
                    double p = Convert.ToDouble(pv, CultureInfo.InvariantCulture);
                    if (p < 0 || p >= 1) { _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(args[0]), "Dropout", $"probability {p.ToString(CultureInfo.InvariantCulture)} is outside [0, 1)"); return -1; }
                    return _p.AddOp(OpKind.Dropout, x, -1, -1, shape, shape, Array.Empty<int>(), p, "Dropout");
                }
                default:
                    Unsupported(inv, $"'{method}' is not a known tensor operation");
                    return -1;
            }
        }

        private int NoArgs(InvocationExpressionSyntax inv, OpKind kind, string label, int x, int[] shape)
        {
            if (inv.ArgumentList.Arguments.Count != 0) { Unsupported(inv, $"{label}() takes no arguments"); return -1; }
            return _p.AddOp(kind, x, -1, -1, shape, shape, Array.Empty<int>(), 0, label);
        }

        private bool ConstInts(InvocationExpressionSyntax inv, string[] names, out int?[] values)
        {
            values = new int?[names.Length];
            int pos = 0;
            foreach (var a in inv.ArgumentList.Arguments)
            {
                int index = a.NameColon is { } nc ? Array.IndexOf(names, nc.Name.Identifier.Text) : pos++;
                if (index < 0 || index >= names.Length) { Unsupported(a, "unknown argument"); return false; }
                var c = Constant(a.Expression);
                if (!c.HasValue || c.Value is not int v) { Unsupported(a, "pooling arguments must be integer constants"); return false; }
                values[index] = v;
            }
            return true;
        }

        /// <summary>"ReLU produces 32 (32×14×14)": what the producer of a value is called in messages.</summary>
        private string Producer(int value) => _p.Describe(value);

        private int ApplyLayer(InvocationExpressionSyntax inv, NetworkParser.LayerRef layer, LayerSpec spec, int x, int[] shape)
        {
            var a = layer.ArgLocations!;
            var i = spec.Ints;
            string who = layer.Property;
            switch (spec.Kind)
            {
                case LayerKind.Conv2d:
                {
                    if (shape.Length != 3) { Rank(inv, $"{who} (Conv2d)", "[C, H, W]", shape); return -1; }
                    if (NetworkParser.HasSequence(shape)) { Sequence(inv, $"{who} (Conv2d)", "convolution needs fixed [C, H, W] sizes", shape); return -1; }
                    if (shape[0] != i[0])
                    {
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("inChannels"), Int(shape[0]), who, $"{i[0]} input channels (Conv2d({i[0]}, {i[1]}))",
                            Producer(x), $"{shape[0]} channels ({NetworkParser.Shape(shape)})", _inputText, "")) return -1;
                    }
                    int oh = (shape[1] + 2 * i[4] - i[5] * (i[2] - 1) - 1) / i[3] + 1, ow = (shape[2] + 2 * i[4] - i[5] * (i[2] - 1) - 1) / i[3] + 1;
                    if (shape[1] + 2 * i[4] - i[5] * (i[2] - 1) - 1 < 0 || shape[2] + 2 * i[4] - i[5] * (i[2] - 1) - 1 < 0 || oh <= 0 || ow <= 0)
                    {
                        _p.ReportPublic(DiagnosticDescriptors.WindowTooLarge, a.Location("kernel"), $"{who} (Conv2d)", $"kernel {i[2]}, stride {i[3]}, padding {i[4]}, dilation {i[5]}", NetworkParser.Shape(shape), "empty");
                        return -1;
                    }
                    return _p.AddOp(OpKind.Conv2d, x, -1, layer.Layer, shape, new[] { i[1], oh, ow }, Array.Empty<int>(), 0, who);
                }
                case LayerKind.Linear:
                {
                    if (shape.Length < 1) { Rank(inv, $"{who} (Linear)", "[..., features]", shape); return -1; }
                    if (shape[shape.Length - 1] == NetworkParser.Sequence) { Sequence(inv, $"{who} (Linear)", "its input features must be a fixed size", shape); return -1; }
                    if (shape[shape.Length - 1] != i[0])
                    {
                        string expects = $"{i[0]} input features (Linear({i[0]}, {i[1]}))";
                        if (shape.Length > 1 && !NetworkParser.HasSequence(shape))
                        {
                            // A map fed straight to a Linear: the forgotten Flatten(). Changing the size to the map's
                            // width would build but is not what was meant, so no fix is offered.
                            _p.ReportPublic(DiagnosticDescriptors.FeatureMismatch, a.Location("inFeatures"), who, expects, Producer(x), NetworkParser.ShapeBracket(shape), _inputText,
                                $": a Linear reads the last dimension ({shape[shape.Length - 1]}); add .Flatten() before it to feed {NetworkParser.Shape(shape)} = {shape.Aggregate(1L, (m, n) => m * n)} features");
                            return -1;
                        }
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("inFeatures"), FeatureFix(x, shape), who, expects,
                            Producer(x), FeatureText(x, shape), _inputText, "")) return -1;
                    }
                    var outShape = (int[])shape.Clone(); outShape[outShape.Length - 1] = i[1];
                    return _p.AddOp(OpKind.Linear, x, -1, layer.Layer, shape, outShape, Array.Empty<int>(), 0, who);
                }
                case LayerKind.MaxPool2d:
                case LayerKind.AvgPool2d:
                    return Pool(inv, spec.Kind == LayerKind.MaxPool2d ? OpKind.MaxPool2d : OpKind.AvgPool2d, $"{who} ({spec.Kind})", x, shape, i[0], i[1], i[2], a.Location("kernel"));
                case LayerKind.BatchNorm2d:
                    if (shape.Length != 3) { Rank(inv, $"{who} (BatchNorm2d)", "[C, H, W]", shape); return -1; }
                    if (NetworkParser.HasSequence(shape)) { Sequence(inv, $"{who} (BatchNorm2d)", "it needs fixed [C, H, W] sizes", shape); return -1; }
                    if (shape[0] != i[0])
                    {
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("features"), Int(shape[0]), who, $"{i[0]} channels (BatchNorm2d({i[0]}))", Producer(x),
                            $"{shape[0]} channels ({NetworkParser.Shape(shape)})", _inputText, "")) return -1;
                    }
                    return _p.AddOp(OpKind.BatchNorm2d, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), 0, who);
                case LayerKind.LayerNorm:
                    if (shape[shape.Length - 1] == NetworkParser.Sequence) { Sequence(inv, $"{who} (LayerNorm)", "it normalises a fixed number of features", shape); return -1; }
                    if (shape[shape.Length - 1] != i[0])
                    {
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("features"), FeatureFix(x, shape), who, $"{i[0]} features (LayerNorm({i[0]}))", Producer(x), FeatureText(x, shape), _inputText, "")) return -1;
                    }
                    return _p.AddOp(OpKind.LayerNorm, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), 0, who);
                case LayerKind.Embedding:
                {
                    if (!_p.IsTokens(x))
                    {
                        _p.ReportPublic(DiagnosticDescriptors.RankMismatch, L(inv), $"{who} (Embedding)", "token ids ([Input(..., Kind = InputKind.TokenIds)])", NetworkParser.ShapeBracket(shape) + " floats", _inputText, "");
                        return -1;
                    }
                    return _p.AddOp(OpKind.Embedding, x, -1, layer.Layer, shape, shape.Concat(new[] { i[1] }).ToArray(), Array.Empty<int>(), 0, who);
                }
                case LayerKind.Dropout:
                    return _p.AddOp(OpKind.Dropout, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), spec.Real, who);
                case LayerKind.PositionEmbedding:
                case LayerKind.TokenTypeEmbedding:
                {
                    string what = spec.Kind == LayerKind.PositionEmbedding ? "PositionEmbedding" : "TokenTypeEmbedding";
                    if (shape.Length != 2) { Rank(inv, $"{who} ({what})", "[T, D] (a sequence of feature vectors)", shape); return -1; }
                    if (shape[1] != i[1])
                    {
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("dim"), Int(shape[1]), who, $"{i[1]} features ({what}({i[0]}, {i[1]}))", Producer(x), FeatureText(x, shape), _inputText, "")) return -1;
                    }
                    int longest = shape[0] == NetworkParser.Sequence ? _p.MaxSequence : shape[0];
                    if (spec.Kind == LayerKind.PositionEmbedding && longest > i[0])
                    {
                        _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, a.Location("count"), who, $"{i[0]} positions do not cover sequences of up to {longest} tokens");
                        return -1;
                    }
                    return _p.AddOp(spec.Kind == LayerKind.PositionEmbedding ? OpKind.AddPositions : OpKind.AddTokenType, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), 0, who);
                }
                case LayerKind.SelfAttention:
                    if (shape.Length != 2) { Rank(inv, $"{who} (SelfAttention)", "[T, E] (a sequence of feature vectors)", shape); return -1; }
                    if (shape[1] == NetworkParser.Sequence) { Sequence(inv, $"{who} (SelfAttention)", "its features must be a fixed size", shape); return -1; }
                    if (shape[1] != i[0])
                    {
                        if (!_p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Location("embed"), Int(shape[1]), who, $"{i[0]} features (SelfAttention({i[0]}, {i[1]}))", Producer(x), FeatureText(x, shape), _inputText, "")) return -1;
                        if (shape[1] % i[1] != 0) _p.FixIsNotEnough(); // the fixed width would not split into the heads
                    }
                    return _p.AddOp(OpKind.SelfAttention, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), spec.Real, who);
                case LayerKind.Flatten:
                    if (NetworkParser.HasSequence(shape)) { Sequence(inv, $"{who} (Flatten)", "the flattened size would depend on the sequence length; reduce T first with SelectToken(i) or MeanOverSequence()", shape); return -1; }
                    return _p.AddOp(OpKind.Flatten, x, -1, layer.Layer, shape, new[] { shape.Aggregate(1, (m, n) => m * n) }, Array.Empty<int>(), 0, who);
                default:
                {
                    var kind = spec.Kind switch { LayerKind.ReLU => OpKind.Relu, LayerKind.GELU => OpKind.Gelu, LayerKind.Tanh => OpKind.Tanh, _ => OpKind.Sigmoid };
                    return _p.AddOp(kind, x, -1, layer.Layer, shape, shape, Array.Empty<int>(), 0, who);
                }
            }
        }

        private static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

        /// <summary>What the code fix writes for a feature count: the flattened shape as a product ("128 * 8 * 8") when
        /// the features come from a Flatten, so the fixed argument reads like the one the user wrote; else the number.</summary>
        private string FeatureFix(int x, int[] shape)
        {
            var pre = _p.PreFlattenShape(x);
            return pre is null || pre.Length < 2 ? Int(shape[shape.Length - 1]) : string.Join(" * ", pre.Select(Int));
        }

        private string FeatureText(int x, int[] shape)
        {
            int last = shape[shape.Length - 1];
            var pre = _p.PreFlattenShape(x);
            return pre is null ? $"{last}" : $"{last} ({NetworkParser.Shape(pre)})";
        }

        private int Pool(SyntaxNode at, OpKind kind, string who, int x, int[] shape, int k, int s, int pad, LocationInfo? loc)
        {
            if (shape.Length != 3) { Rank(at, who, "[C, H, W]", shape); return -1; }
            if (NetworkParser.HasSequence(shape)) { Sequence(at, who, "pooling needs fixed [C, H, W] sizes", shape); return -1; }
            int oh = (shape[1] + 2 * pad - k) / s + 1, ow = (shape[2] + 2 * pad - k) / s + 1;
            if (shape[1] + 2 * pad < k || shape[2] + 2 * pad < k || oh <= 0 || ow <= 0)
            {
                _p.ReportPublic(DiagnosticDescriptors.WindowTooLarge, loc, who, $"kernel {k}, stride {s}, padding {pad}", NetworkParser.Shape(shape), "empty");
                return -1;
            }
            return _p.AddOp(kind, x, -1, -1, shape, new[] { shape[0], oh, ow }, new[] { k, s, pad }, 0, who);
        }

        private void Sequence(SyntaxNode at, string who, string why, int[] shape) =>
            _p.ReportPublic(DiagnosticDescriptors.SequenceDimension, L(at), who, why, NetworkParser.Shape(shape), _inputText);

        private void Rank(SyntaxNode at, string who, string expected, int[] shape) =>
            _p.ReportPublic(DiagnosticDescriptors.RankMismatch, L(at), who, expected, NetworkParser.ShapeBracket(shape), _inputText);
    }

    /// <summary>Receives the location of Forward's returned expression (for CNET0009).</summary>
    internal interface IReturnLocationSink { void Set(LocationInfo? location); }
}
