using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace Compiled.Nets.Generator.Parsing
{
    /// <summary>
    /// Reads a <c>Forward</c> body as a specification: each expression becomes ops in the plan, with per-sample shapes
    /// checked as they are propagated by each op's shape rule (<see cref="OpDefinition.Apply"/>, <see cref="OpDefinition.Call"/>).
    /// A value is an op id; -1 means "an error was already reported here". The helpers below are what the rules report with.
    /// </summary>
    internal sealed class ForwardWalker
    {
        private readonly NetworkParser _p;
        private readonly SemanticModel _model;
        private readonly Dictionary<string, NetworkParser.LayerRef> _layers;
        private readonly string _inputText;
        // Loops over a block array, unrolled: a foreach variable names one copy, a for variable holds its index.
        private readonly Dictionary<string, (NetworkParser.LayerRef Layer, int Copy)> _elements = new(StringComparer.Ordinal);
        /// <summary>Locals holding the pieces of a Chunk or Split (indexed by a constant: parts[0]).</summary>
        private readonly Dictionary<string, SplitPieces> _pieces = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _indices = new(StringComparer.Ordinal);

        public ForwardWalker(NetworkParser parser, SemanticModel model, Dictionary<string, NetworkParser.LayerRef> layers, string inputText)
        {
            _p = parser; _model = model; _layers = layers; _inputText = inputText;
        }

        internal NetworkParser Parser => _p;

        /// <summary>The network's input shape as messages show it.</summary>
        internal string InputText => _inputText;

        internal static LocationInfo? Location(SyntaxNode n) => LocationInfo.From(n);
        private static LocationInfo? L(SyntaxNode n) => LocationInfo.From(n);

        /// <summary>A constant argument: literals read from the syntax (the generator parses every network on every
        /// edit, and a semantic query binds the whole Forward body), anything else through the semantic model.</summary>
        internal Optional<object?> Constant(ExpressionSyntax e) => e switch
        {
            LiteralExpressionSyntax { RawKind: (int)SyntaxKind.NumericLiteralExpression } literal => new Optional<object?>(literal.Token.Value),
            _ => _model.GetConstantValue(e),
        };

        /// <summary>
        /// The value of a numeric constant operand (<c>0.5f</c>, <c>-1</c>, <c>1f / 8</c>, a const field), or null. Only
        /// expressions that can be constant syntactically reach the semantic model, so tensor arithmetic costs no binding.
        /// </summary>
        private double? Scalar(ExpressionSyntax e, Dictionary<string, int> env)
        {
            if (!MayBeConstant(e, env)) return null;
            var value = Constant(e);
            return value.HasValue && value.Value is int or long or float or double ? Convert.ToDouble(value.Value, CultureInfo.InvariantCulture) : null;
        }

        private static bool MayBeConstant(ExpressionSyntax e, Dictionary<string, int> env) => e switch
        {
            LiteralExpressionSyntax => true,
            IdentifierNameSyntax id => !env.ContainsKey(id.Identifier.ValueText),
            MemberAccessExpressionSyntax { Expression: NameSyntax } => true,
            ParenthesizedExpressionSyntax par => MayBeConstant(par.Expression, env),
            PrefixUnaryExpressionSyntax unary => MayBeConstant(unary.Operand, env),
            CastExpressionSyntax cast => MayBeConstant(cast.Expression, env),
            BinaryExpressionSyntax bin => MayBeConstant(bin.Left, env) && MayBeConstant(bin.Right, env),
            _ => false,
        };

        /// <summary>Whether a constant of Forward is a finite float (the generated code holds it as one); reports when not.</summary>
        internal bool Finite(double value, SyntaxNode at, string who, string? what = null)
        {
            if (SourceWriter.IsFiniteFloat(value)) return true;
            _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(at), who, $"{what ?? value.ToString(CultureInfo.InvariantCulture)} is not a finite float");
            return false;
        }

        internal void Unsupported(SyntaxNode node, string why)
        {
            if (HalfTyped(node)) { _p.FailQuietly(); return; }
            _p.ReportPublic(DiagnosticDescriptors.UnsupportedOp, L(node), Quote(node), why);
        }

        /// <summary>
        /// Whether the code is half typed (a syntax error inside it): C# reports that itself, and CNET0005 beside it
        /// would be a second, longer error on every keystroke. A name that does not exist (<c>x.Sqrt()</c>) is still
        /// reported, as CNET0005 names what is supported.
        /// </summary>
        internal static bool HalfTyped(SyntaxNode node) => node.GetDiagnostics().Any(d => d.Severity == DiagnosticSeverity.Error);

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
                return Returned(eb.Expression, env, holder);
            }
            if (method.Body is null) { Unsupported(method, "Forward needs a body"); return -1; }
            foreach (var st in method.Body.Statements)
            {
                if (st is ReturnStatementSyntax ret && ret.Expression is not null)
                {
                    holder.Set(L(ret.Expression));
                    return Returned(ret.Expression, env, holder);
                }
                if (!Statement(st, env)) return -1;
            }
            // Without any return C# reports CS0161 (not all code paths return a value) itself.
            if (!ReturnsAnywhere(method.Body)) { _p.FailQuietly(); return -1; }
            Unsupported(method, "Forward must end with a return statement");
            return -1;
        }

        private static bool ReturnsAnywhere(BlockSyntax body) =>
            body.Statements.LastOrDefault() is ThrowStatementSyntax
            || body.DescendantNodes(n => n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)).OfType<ReturnStatementSyntax>().Any();

        /// <summary>A [CustomLoss] method's body: statements as in Forward, then the returned value, a trailing
        /// <c>.Mean()</c> dropped (the loss is that mean already). -1 after reporting.</summary>
        public int LossBody(MethodDeclarationSyntax method, Dictionary<string, int> env)
        {
            ExpressionSyntax? returned = method.ExpressionBody?.Expression;
            if (returned is null)
            {
                if (method.Body is null) { Unsupported(method, "the loss method needs a body"); return -1; }
                foreach (var st in method.Body.Statements)
                {
                    if (st is ReturnStatementSyntax { Expression: { } e }) { returned = e; break; }
                    if (!Statement(st, env)) return -1;
                }
                if (returned is null) { Unsupported(method, "the loss method must end with a return statement"); return -1; }
            }
            if (returned is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Mean" } mean, ArgumentList.Arguments.Count: 0 })
                returned = mean.Expression;
            return Expr(returned, env);
        }

        /// <summary>What Forward returns: one tensor, or a tuple literal of several (its values go to the holder; the first is returned).</summary>
        private int Returned(ExpressionSyntax e, Dictionary<string, int> env, IReturnLocationSink holder)
        {
            if (e is not TupleExpressionSyntax tuple) return Expr(e, env);
            var values = new List<int>();
            foreach (var element in tuple.Arguments)
            {
                int v = Expr(element.Expression, env);
                if (v < 0) return -1;
                values.Add(v);
            }
            holder.SetOutputs(values, tuple.Arguments.Select(a => L(a.Expression)).ToList());
            return values[0];
        }

        /// <summary>One statement before the final return: a local, an assignment, or a loop over a block array (unrolled,
        /// each copy applied in turn with its own weights). False after reporting.</summary>
        private bool Statement(StatementSyntax st, Dictionary<string, int> env)
        {
            switch (st)
            {
                case LocalDeclarationStatementSyntax local:
                    foreach (var v in local.Declaration.Variables)
                    {
                        if (v.Initializer is null) { Unsupported(v, "locals must be initialised"); return false; }
                        if (IsSplit(v.Initializer.Value) is { } split)
                        {
                            // var parts = x.Chunk(2, -1); then parts[0], parts[1]
                            if (Pieces(split, env) is not { } pieces) return false;
                            _pieces[v.Identifier.ValueText] = pieces;
                            continue;
                        }
                        int id = Expr(v.Initializer.Value, env);
                        if (id < 0) return false;
                        env[v.Identifier.ValueText] = id;
                    }
                    return true;
                case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { RawKind: (int)SyntaxKind.SimpleAssignmentExpression } asg }
                    when asg.Left is IdentifierNameSyntax target:
                {
                    int id = Expr(asg.Right, env);
                    if (id < 0) return false;
                    env[target.Identifier.ValueText] = id;
                    return true;
                }
                case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { RawKind: (int)SyntaxKind.SimpleAssignmentExpression } asg }
                    when Deconstructed(asg.Left) is { } names:
                {
                    // var (a, b) = x.Chunk(2, -1);  or  (a, b) = x.Split([3, 5], 1);
                    if (IsSplit(asg.Right) is not { } split) { Unsupported(asg, "only Chunk and Split are deconstructed into several tensors"); return false; }
                    if (Pieces(split, env) is not { } pieces) return false;
                    if (pieces.Count != names.Count)
                    {
                        _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(asg.Left), ((MemberAccessExpressionSyntax)split.Expression).Name.Identifier.ValueText,
                            $"{split} gives {pieces.Count} pieces ({string.Join(", ", pieces.Shapes.Select(NetworkParser.ShapeBracket))}), but {names.Count} are deconstructed");
                        return false;
                    }
                    // A discard (_) costs nothing: only named pieces become ops.
                    for (int i = 0; i < names.Count; i++) if (names[i] is { } n && n != "_") env[n] = pieces.Value(_p, i);
                    return true;
                }
                case BlockSyntax block:
                    foreach (var inner in block.Statements) if (!Statement(inner, env)) return false;
                    return true;
                case ForEachStatementSyntax loop when BlockArray(loop.Expression) is { } blocks:
                    for (int copy = 0; copy < blocks.Copies; copy++)
                    {
                        _elements[loop.Identifier.ValueText] = (blocks, copy);
                        bool ok = Statement(loop.Statement, env);
                        _elements.Remove(loop.Identifier.ValueText);
                        if (!ok || TooLong(loop, loop.ForEachKeyword, loop.CloseParenToken, blocks.Copies)) return false;
                    }
                    return true;
                case ForStatementSyntax loop when CountingLoop(loop) is var (name, from, to):
                    if (TooLong(loop, loop.ForKeyword, loop.CloseParenToken, (long)to - from)) return false;
                    for (int i = from; i < to; i++)
                    {
                        _indices[name] = i;
                        bool ok = Statement(loop.Statement, env);
                        _indices.Remove(name);
                        if (!ok || TooLong(loop, loop.ForKeyword, loop.CloseParenToken, (long)to - from)) return false;
                    }
                    return true;
                case ForEachStatementSyntax or ForStatementSyntax when st.ChildNodes().Where(n => n is not StatementSyntax).SelectMany(n => n.DescendantNodesAndSelf()).OfType<IdentifierNameSyntax>()
                        .Any(n => _layers.TryGetValue(n.Identifier.ValueText, out var l) && l.Layer < 0):
                    return false; // over a layer property in error: its own error says what is wrong
                case ForEachStatementSyntax or ForStatementSyntax:
                    Unsupported(st, "loops run over a [SubNetwork(n)] block array: foreach (var b in Blocks) or for (int i = 0; i < Blocks.Length; i++)");
                    return false;
                default:
                    Unsupported(st, "only local declarations, assignments, loops over block arrays and a final return are understood");
                    return false;
            }
        }

        /// <summary>
        /// Whether an unrolled loop has grown Forward past <see cref="NetworkParser.MaxOps"/> (or would, by its count alone):
        /// reported at the loop's header, so an editor never unrolls a million copies while the user types.
        /// </summary>
        private bool TooLong(StatementSyntax loop, SyntaxToken first, SyntaxToken last, long iterations)
        {
            if (iterations <= NetworkParser.MaxOps && _p.OpCount <= NetworkParser.MaxOps) return false;
            var header = Microsoft.CodeAnalysis.Location.Create(loop.SyntaxTree, TextSpan.FromBounds(first.SpanStart, last.Span.End));
            string most = NetworkParser.MaxOps.ToString("N0", CultureInfo.InvariantCulture), runs = iterations.ToString("N0", CultureInfo.InvariantCulture);
            _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, LocationInfo.From(header), first.ValueText + " loop", iterations > NetworkParser.MaxOps
                ? $"it runs {runs} times, but Forward is unrolled into straight-line code of at most {most} operations"
                : $"unrolled ({runs} times here), it takes Forward past {most} operations, the most its straight-line code holds");
            return true;
        }

        /// <summary>A layer property that is an array of sub-networks ([SubNetwork(n)], n &gt; 1), or null.</summary>
        private NetworkParser.LayerRef? BlockArray(ExpressionSyntax e) =>
            e is IdentifierNameSyntax id && _layers.TryGetValue(id.Identifier.ValueText, out var layer) && layer.Copies > 1 ? layer : null;

        /// <summary><c>for (int i = a; i &lt; b; i++)</c> with constant bounds (b may be <c>Blocks.Length</c>): (i, a, b), or null.</summary>
        private (string Name, int From, int To)? CountingLoop(ForStatementSyntax loop)
        {
            if (loop.Declaration is not { Variables: { Count: 1 } vars } || vars[0].Initializer is null) return null;
            string name = vars[0].Identifier.ValueText;
            if (Constant(vars[0].Initializer!.Value) is not { HasValue: true, Value: int from }) return null;
            if (loop.Condition is not BinaryExpressionSyntax { RawKind: (int)SyntaxKind.LessThanExpression } cond
                || cond.Left is not IdentifierNameSyntax left || left.Identifier.ValueText != name) return null;
            int? to = cond.Right is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Length" } length && BlockArray(length.Expression) is { } blocks
                ? blocks.Copies
                : Constant(cond.Right) is { HasValue: true, Value: int bound } ? bound : null;
            if (to is null || loop.Incrementors.Count != 1) return null;
            bool step = loop.Incrementors[0] switch
            {
                PostfixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.PostIncrementExpression, Operand: IdentifierNameSyntax a } => a.Identifier.ValueText == name,
                PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.PreIncrementExpression, Operand: IdentifierNameSyntax b } => b.Identifier.ValueText == name,
                _ => false,
            };
            return step ? (name, from, to.Value) : null;
        }

        /// <summary>The copy an Apply argument names: a foreach variable, or <c>Blocks[i]</c> with a constant or loop index; (null, 0) when none.</summary>
        private (NetworkParser.LayerRef? Layer, int Copy, bool Bad) Element(ExpressionSyntax e)
        {
            if (e is IdentifierNameSyntax id && _elements.TryGetValue(id.Identifier.ValueText, out var bound)) return (bound.Layer, bound.Copy, false);
            if (e is not ElementAccessExpressionSyntax { ArgumentList.Arguments.Count: 1 } access) return (null, 0, false);
            // A layer whose declaration is in error stays quiet here too.
            if (access.Expression is IdentifierNameSyntax named && _layers.TryGetValue(named.Identifier.ValueText, out var declared) && declared.Layer < 0) return (null, 0, true);
            if (BlockArray(access.Expression) is not { } blocks) return (null, 0, false);
            var index = access.ArgumentList.Arguments[0].Expression;
            int? i = index is IdentifierNameSyntax v && _indices.TryGetValue(v.Identifier.ValueText, out int loopIndex) ? loopIndex
                : Constant(index) is { HasValue: true, Value: int c } ? c : null;
            if (i is null) { Unsupported(access, "a block array is indexed by a constant or a for loop's variable"); return (null, 0, true); }
            if (i < 0 || i >= blocks.Copies)
            {
                _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(access.ArgumentList), access.Expression.ToString(), $"index {i} is outside its {blocks.Copies} blocks");
                return (null, 0, true);
            }
            return (blocks, i.Value, false);
        }

        /// <summary>The names a deconstruction binds (null for a discard), or null when the target is no deconstruction.</summary>
        private static List<string?>? Deconstructed(ExpressionSyntax left)
        {
            static string? Name(SyntaxNode n) => n switch
            {
                SingleVariableDesignationSyntax v => v.Identifier.ValueText,
                DeclarationExpressionSyntax { Designation: SingleVariableDesignationSyntax v } => v.Identifier.ValueText,
                IdentifierNameSyntax id => id.Identifier.ValueText,
                _ => null,
            };
            return left switch
            {
                DeclarationExpressionSyntax { Designation: ParenthesizedVariableDesignationSyntax p } => p.Variables.Select(Name).ToList(),
                TupleExpressionSyntax t => t.Arguments.Select(a => Name(a.Expression)).ToList(),
                _ => null,
            };
        }

        /// <summary>A call of Chunk or Split on a tensor, or null.</summary>
        private static InvocationExpressionSyntax? IsSplit(ExpressionSyntax e) =>
            e is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Chunk" or "Split" } } inv ? inv : null;

        /// <summary>The values of a Chunk or Split call (its receiver evaluated first); null after reporting.</summary>
        private SplitPieces? Pieces(InvocationExpressionSyntax split, Dictionary<string, int> env)
        {
            int x = Expr(((MemberAccessExpressionSyntax)split.Expression).Expression, env);
            return x < 0 ? null : NarrowOp.Pieces(this, split, x, _p.ShapeOf(x));
        }

        /// <summary><c>parts[i]</c> or <c>x.Chunk(2, -1)[i]</c>: one piece of a split, by a constant index; -1 after reporting.</summary>
        private int Piece(ElementAccessExpressionSyntax access, Dictionary<string, int> env)
        {
            SplitPieces? pieces = access.Expression is IdentifierNameSyntax id && _pieces.TryGetValue(id.Identifier.ValueText, out var named) ? named
                : IsSplit(access.Expression) is { } split ? Pieces(split, env) : null;
            if (pieces is null) return -1;
            if (access.ArgumentList.Arguments.Count != 1 || Constant(access.ArgumentList.Arguments[0].Expression) is not { HasValue: true, Value: int i })
            {
                Unsupported(access, "a split's pieces are indexed by a constant");
                return -1;
            }
            if (i < 0 || i >= pieces.Count)
            {
                _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(access.ArgumentList), access.Expression.ToString(), $"index {i} is outside its {pieces.Count} pieces");
                return -1;
            }
            return pieces.Value(_p, i);
        }

        /// <summary>The value of one expression of Forward: its ops, or -1 after reporting (also when its output would be
        /// too large for a tensor, so no later rule reasons with an overflowed size).</summary>
        private int Expr(ExpressionSyntax e, Dictionary<string, int> env)
        {
            int before = _p.OpCount;
            int id = ExprCore(e, env);
            if (id < before || _p.TooLarge(_p.ShapeOf(id)) is not { } why) return id;
            _p.ReportPublic(DiagnosticDescriptors.InvalidArgument, L(e), _p.Describe(id), why);
            return -1;
        }

        private int ExprCore(ExpressionSyntax e, Dictionary<string, int> env)
        {
            switch (e)
            {
                case ElementAccessExpressionSyntax access when access.Expression is IdentifierNameSyntax named && _pieces.ContainsKey(named.Identifier.ValueText)
                    || IsSplit(access.Expression) is not null:
                    return Piece(access, env);
                case ParenthesizedExpressionSyntax par:
                    return Expr(par.Expression, env);
                case IdentifierNameSyntax id:
                    if (env.TryGetValue(id.Identifier.ValueText, out int v)) return v;
                    Unsupported(id, "it is not the input or a local tensor");
                    return -1;
                case BinaryExpressionSyntax bin when bin.IsKind(SyntaxKind.AddExpression) || bin.IsKind(SyntaxKind.SubtractExpression) || bin.IsKind(SyntaxKind.MultiplyExpression)
                    || bin.IsKind(SyntaxKind.DivideExpression):
                {
                    // A constant operand scales or shifts (x * 0.5f, 1f - gate); otherwise both sides are tensors.
                    if (Scalar(bin.Right, env) is double right)
                    {
                        int t = Expr(bin.Left, env);
                        return t < 0 ? -1 : ScalarOp.Combine(this, bin, t, right, constantOnLeft: false);
                    }
                    if (Scalar(bin.Left, env) is double left)
                    {
                        int t = Expr(bin.Right, env);
                        return t < 0 ? -1 : ScalarOp.Combine(this, bin, t, left, constantOnLeft: true);
                    }
                    if (bin.IsKind(SyntaxKind.DivideExpression)) { Unsupported(bin, "dividing by a tensor is not compiled; divide by a constant"); return -1; }
                    int a = Expr(bin.Left, env); if (a < 0) return -1;
                    int b = Expr(bin.Right, env); if (b < 0) return -1;
                    if (bin.IsKind(SyntaxKind.AddExpression)) return OpTable.Add.Combine(this, bin, a, b);
                    return (bin.IsKind(SyntaxKind.SubtractExpression) ? OpTable.Subtract : OpTable.Multiply).Combine(this, bin, a, b);
                }
                case InvocationExpressionSyntax inv when inv.Expression is MemberAccessExpressionSyntax ma:
                {
                    // Tensor.Cat(a, b) and other static calls: name the call, not its receiver type.
                    if (ma.Expression is NameSyntax receiver && !(receiver is IdentifierNameSyntax local && env.ContainsKey(local.Identifier.ValueText))
                        && _model.GetSymbolInfo(receiver).Symbol is ITypeSymbol or INamespaceSymbol)
                    {
                        if (_model.GetSymbolInfo(receiver).Symbol is ITypeSymbol type && NetworkParser.IsTensor(type) && ma.Name.Identifier.ValueText == "Concat")
                            return Concat(inv, env);
                        if (_model.GetSymbolInfo(receiver).Symbol is ITypeSymbol matType && NetworkParser.IsTensor(matType) && ma.Name.Identifier.ValueText == "MatMul")
                        {
                            if (inv.ArgumentList.Arguments.Count != 2) { Unsupported(inv, "Tensor.MatMul takes two tensors"); return -1; }
                            int left = Expr(inv.ArgumentList.Arguments[0].Expression, env); if (left < 0) return -1;
                            int right = Expr(inv.ArgumentList.Arguments[1].Expression, env); if (right < 0) return -1;
                            return OpTable.MatMul.Combine(this, inv, left, right);
                        }
                        Unsupported(inv, $"{ma} is not an operation the generator compiles (tensor operations are called on a tensor: x.Relu())");
                        return -1;
                    }
                    int x = Expr(ma.Expression, env);
                    if (x < 0) return -1;
                    if (ma.Name.Identifier.ValueText == "MatMul")
                    {
                        if (inv.ArgumentList.Arguments.Count != 1) { Unsupported(inv, "a.MatMul(b) takes one tensor"); return -1; }
                        int other = Expr(inv.ArgumentList.Arguments[0].Expression, env);
                        return other < 0 ? -1 : OpTable.MatMul.Combine(this, inv, x, other);
                    }
                    return Call(inv, ma.Name.Identifier.ValueText, x);
                }
                default:
                    Unsupported(e, "this kind of expression is not understood");
                    return -1;
            }
        }

        /// <summary><c>Tensor.Concat(dim, a, b, …)</c>: a constant dimension, then two or more tensors.</summary>
        private int Concat(InvocationExpressionSyntax inv, Dictionary<string, int> env)
        {
            var args = inv.ArgumentList.Arguments;
            if (args.Count < 3 || Constant(args[0].Expression) is not { HasValue: true, Value: int dim })
            {
                Unsupported(inv, "Tensor.Concat takes a constant dimension and at least two tensors");
                return -1;
            }
            var values = new List<int>();
            foreach (var a in args.Skip(1))
            {
                int v = Expr(a.Expression, env);
                if (v < 0) return -1;
                values.Add(v);
            }
            return OpTable.Concat.Combine(this, inv, dim, values, args);
        }

        private int Call(InvocationExpressionSyntax inv, string method, int x)
        {
            var args = inv.ArgumentList.Arguments;
            var shape = _p.ShapeOf(x);
            if (_p.IsTokens(x) && method != "OneHot" && !(method == "Apply" && args.Count == 1 && args[0].Expression is IdentifierNameSyntax n0
                    && _layers.TryGetValue(n0.Identifier.ValueText, out var l0) && l0.Layer >= 0 && _p.Layer(l0.Layer) is { Kind: not LayerKind.SubNetwork } ls0
                    && OpTable.Of(ls0.Kind).AcceptsTokens))
            {
                Unsupported(inv, "token ids and class indices feed an Embedding layer or OneHot(classes) alone");
                return -1;
            }
            if (method == "Apply")
            {
                if (args.Count == 1 && Element(args[0].Expression) is var (element, copy, bad) && (element is not null || bad))
                {
                    if (bad) return -1;
                    element!.Used = true;
                    return element.Layer < 0 ? -1 : _p.Inline(element, x, L(args[0]), _inputText, copy);
                }
                if (args.Count != 1 || args[0].Expression is not IdentifierNameSyntax name || !_layers.TryGetValue(name.Identifier.ValueText, out var layer))
                {
                    Unsupported(inv, "Apply takes one layer property declared with a layer attribute or [SubNetwork]");
                    return -1;
                }
                layer.Used = true;
                if (layer.Layer < 0) return -1; // its declaration already carries the error
                var spec = _p.Layer(layer.Layer);
                if (spec.Kind == LayerKind.SubNetwork) return _p.Inline(layer, x, L(args[0]), _inputText);
                return OpTable.Of(spec.Kind).Apply(this, new LayerApplication(inv, layer, spec, x, shape));
            }
            if (OpTable.ForMethod(method) is { } op) return op.Call(this, inv, x, shape);
            Unsupported(inv, $"'{method}' is not a known tensor operation");
            return -1;
        }

        /// <summary>A call that takes no arguments (<c>x.Relu()</c>) and keeps the shape.</summary>
        internal int NoArguments(InvocationExpressionSyntax inv, OpKind kind, string label, int x, int[] shape)
        {
            if (inv.ArgumentList.Arguments.Count != 0) { Unsupported(inv, $"{label}() takes no arguments"); return -1; }
            return _p.AddOp(kind, x, -1, -1, shape, shape, Array.Empty<int>(), 0, label);
        }

        /// <summary>Integer constant arguments by position or name (null where not given).</summary>
        internal bool ConstantInts(InvocationExpressionSyntax inv, string[] names, out int?[] values)
        {
            values = new int?[names.Length];
            int pos = 0;
            foreach (var a in inv.ArgumentList.Arguments)
            {
                int index = a.NameColon is { } nc ? Array.IndexOf(names, nc.Name.Identifier.ValueText) : pos++;
                if (index < 0 || index >= names.Length) { Unsupported(a, "unknown argument"); return false; }
                var c = Constant(a.Expression);
                if (!c.HasValue || c.Value is not int v) { Unsupported(a, "pooling arguments must be integer constants"); return false; }
                values[index] = v;
            }
            return true;
        }

        /// <summary>"ReLU produces 32 (32×14×14)": what the producer of a value is called in messages.</summary>
        internal string Producer(int value) => _p.Describe(value);

        internal static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

        /// <summary>What the code fix writes for a feature count: the flattened shape as a product ("128 * 8 * 8") when
        /// the features come from a Flatten, so the fixed argument reads like the one the user wrote; else the number.</summary>
        internal string FeatureFix(int x, int[] shape)
        {
            var pre = _p.PreFlattenShape(x);
            return pre is null || pre.Length < 2 ? Int(shape[shape.Length - 1]) : string.Join(" * ", pre.Select(Int));
        }

        internal string FeatureText(int x, int[] shape)
        {
            int last = shape[shape.Length - 1];
            var pre = _p.PreFlattenShape(x);
            return pre is null ? $"{last}" : $"{last} ({NetworkParser.Shape(pre)})";
        }

        internal void Sequence(SyntaxNode at, string who, string why, int[] shape) =>
            _p.ReportPublic(DiagnosticDescriptors.SequenceDimension, L(at), who, why, NetworkParser.Shape(shape), _inputText);

        internal void Rank(SyntaxNode at, string who, string expected, int[] shape) =>
            _p.ReportPublic(DiagnosticDescriptors.RankMismatch, L(at), who, expected, NetworkParser.ShapeBracket(shape), _inputText);
    }

    /// <summary>Receives the location of Forward's returned expression (for CNET0009).</summary>
    internal interface IReturnLocationSink
    {
        void Set(LocationInfo? location);
        /// <summary>Forward returns a tuple: each element's value and where it is written.</summary>
        void SetOutputs(List<int> values, List<LocationInfo?> locations);
    }
}
