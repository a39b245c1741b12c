using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator.Parsing
{
    /// <summary>
    /// Turns a [Network] class (syntax + semantic model) into a <see cref="NetworkSpec"/>: reads the layer properties,
    /// walks <c>Forward</c> as a specification, propagates per-sample shapes and collects diagnostics. Sub-networks are
    /// parsed recursively and their ops inlined, so the plan stays one flat list.
    /// </summary>
    internal sealed class NetworkParser
    {
        private const string Ns = "Compiled.Nets.";
        private readonly Compilation _compilation;
        private readonly CancellationToken _ct;
        private readonly List<DiagnosticInfo> _diagnostics = new();
        private readonly List<LayerSpec> _layers = new();
        private readonly List<ParamSpec> _params = new();
        private readonly HashSet<string> _paramNames = new(StringComparer.Ordinal), _paramFields = new(StringComparer.Ordinal);
        private readonly List<OpSpec> _ops = new();
        private readonly List<InputSpec> _inputs = new(); // the root's inputs, in Forward's parameter order
        private bool _failed;
        private int _depth;
        // A mismatch with a code fix: the walk goes on as if the fix were applied, silently, and the fix is kept
        // only if nothing else fails (an editor should offer a fix only where its result builds).
        private int _pendingFix = -1;
        private bool _fixBroken;
        // The arguments of the block being inlined (BlockArg placeholders resolve to them), and who applies it; null at
        // the root. A block parsed on its own keeps its placeholders.
        private int[]? _blockArgs;
        private LayerRef? _applying;
        private bool _parsingBlock;

        /// <summary>BlockArg.A … BlockArg.H (Compiled.Nets.BlockArg): A is −1,000,000, each next one less.</summary>
        internal const int FirstPlaceholder = -1_000_000, PlaceholderCount = 8;

        /// <summary>The index of a BlockArg placeholder, -1 for an ordinary value, -2 for arithmetic on a placeholder.</summary>
        internal static int PlaceholderIndex(int value) =>
            value <= FirstPlaceholder && value > FirstPlaceholder - PlaceholderCount ? FirstPlaceholder - value : value <= -900_000 ? -2 : -1;

        // Sub-network bodies already parsed, by state-dict prefix: applying one again shares its layers.
        private readonly Dictionary<string, Dictionary<string, LayerRef>> _bodies = new(StringComparer.Ordinal);

        /// <summary>The symbolic sequence dimension T in per-sample shapes (<c>Dim.Sequence</c>).</summary>
        internal const int Sequence = Shapes.Sequence;

        /// <summary>The bound of T declared on the root input (0 when the network has no sequence dimension).</summary>
        internal int MaxSequence { get; private set; }

        private NetworkParser(Compilation compilation, CancellationToken ct) { _compilation = compilation; _ct = ct; }

        public static ParseResult Parse(INamedTypeSymbol type, ClassDeclarationSyntax syntax, Compilation compilation, CancellationToken ct)
        {
            // A name still being typed (`class` alone, `namespace A..B`): nothing to say beyond the syntax error, and code
            // written with an empty name would only add errors in a generated file.
            if (MissingName(type)) return new ParseResult(null, null, EquatableArray<DiagnosticInfo>.Empty);
            var p = new NetworkParser(compilation, ct);
            var spec = p.ParseRoot(type, syntax);
            if (p._failed) spec = null;
            if (spec is { IsBlock: false } && type.GetAttributes().FirstOrDefault(x => Is(x, "WeightsAttribute")) is { } weights
                && weights.ConstructorArguments.Length == 1 && weights.ConstructorArguments[0].Value is string weightsPath)
                spec = spec with { WeightsPath = weightsPath };
            if (p._pendingFix >= 0 && p._fixBroken) p._diagnostics[p._pendingFix] = p._diagnostics[p._pendingFix] with { Replacement = null };
            return new ParseResult(spec, spec is null ? Skeleton(type, ct) : null, p._diagnostics.ToEquatableArray());
        }

        /// <summary>Whether the class, a containing type or a namespace part has no name yet.</summary>
        private static bool MissingName(INamedTypeSymbol type)
        {
            for (var t = type; t is not null; t = t.ContainingType)
                if (t.Name.Length == 0) return true;
            for (var n = type.ContainingNamespace; n is { IsGlobalNamespace: false }; n = n.ContainingNamespace)
                if (n.Name.Length == 0) return true;
            return false;
        }

        /// <summary>The members a class with errors still gets (null when it or a containing type is not partial).</summary>
        private static NetworkSkeleton? Skeleton(INamedTypeSymbol type, CancellationToken ct)
        {
            if (FirstNonPartial(type, ct) is not null) return null;
            var syntax = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(ct)).OfType<ClassDeclarationSyntax>().FirstOrDefault();
            if (syntax is null || DeclarationProblem(type, syntax) is not null) return null;
            var inputAttr = type.GetAttributes().FirstOrDefault(a => Is(a, "InputAttribute"));
            var shape = inputAttr is null ? Array.Empty<int>() : ReadInput(inputAttr).Shape;
            int maxSequence = shape.Length > 0 && shape[0] == Sequence ? Math.Max(1, NamedInt(inputAttr, "MaxSequence") ?? 128) : 0;
            long inputFeatures = shape.Length == 0 || shape.Skip(1).Any(d => d <= 0) ? 0 : shape.Aggregate(1L, (a, d) => a * (d == Sequence ? maxSequence : d));
            if (inputFeatures > MaxValues) inputFeatures = 0; // an input too large for a tensor: its error says so

            var properties = new List<StubProperty>();
            foreach (var prop in type.GetMembers().OfType<IPropertySymbol>())
            {
                if (!prop.GetAttributes().Any(a => Is(a, "SubNetworkAttribute") || a.AttributeClass is { } c && InheritsFrom(c, Ns + "LayerAttribute"))) continue;
                if (Keyword(prop.Name)) continue; // its error says to rename it
                // Only a partial definition without bodies asks for an implementation; anything else would clash with one.
                // It gets the accessors it declares (a wrong set is the property's own CNET0013), none when it has none.
                var decl = prop.DeclaringSyntaxReferences.Select(r => r.GetSyntax(ct)).OfType<PropertyDeclarationSyntax>().FirstOrDefault();
                if (decl is null || !decl.Modifiers.Any(SyntaxKind.PartialKeyword) || decl.ExpressionBody is not null
                    || decl.AccessorList is not { Accessors.Count: > 0 } || decl.AccessorList.Accessors.Any(a => a.Body is not null || a.ExpressionBody is not null || a.Keyword.IsMissing)) continue;
                var accessors = decl.AccessorList.Accessors.Select(a => string.Join(" ", a.Modifiers.Select(m => m.Text).Append(a.Keyword.Text)).Trim());
                properties.Add(new StubProperty(string.Join(" ", decl.Modifiers.Select(m => m.Text)), prop.Type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat), prop.Name, accessors.ToEquatableArray()));
            }
            var (loss, _) = ReadLoss(type);
            // Several inputs: their members take a span each, named as the inputs (shapes as far as they are valid).
            var inputs = type.GetAttributes().Where(a => Is(a, "InputAttribute")).Select(a => (Attr: a, Input: ReadInput(a))).ToList();
            var several = inputs.Count > 1
                ? inputs.Select(i => new InputSpec(i.Input.Name, i.Input.Shape.ToEquatableArray(), IsTokenInput(i.Attr), -1)).ToEquatableArray()
                : EquatableArray<InputSpec>.Empty;
            // Several outputs: a span each, and a targets span per loss that names one of them (in declaration order).
            var outputs = ForwardOutputNames(type) ?? new List<string>();
            var heads = new List<LossSpec>();
            if (outputs.Count > 1)
                foreach (var a in type.GetAttributes())
                    if (Losses.ForAttribute(a.AttributeClass?.ToDisplayString() ?? "") is { } d && NamedString(a, "Output") is { } named
                        && outputs.IndexOf(named) is var k and >= 0 && heads.All(h => h.Output != k))
                        heads.Add(new LossSpec(d.Kind, 0, k, 1f, EquatableArray<float>.Empty, int.MinValue));
            return new NetworkSkeleton(NamespaceOf(type), type.Name, Modifiers(syntax), ContainingDeclarations(type),
                inputAttr is not null && IsTokenInput(inputAttr), maxSequence, loss, inputFeatures, 0, properties.ToEquatableArray())
            {
                Inputs = several, Outputs = outputs.Count > 1 ? outputs.ToEquatableArray() : EquatableArray<string>.Empty, HeadLosses = heads.ToEquatableArray(),
                HasWeights = type.GetAttributes().Any(x => Is(x, "WeightsAttribute")),
                IsBlock = inputAttr is null,
                ForwardIsTaken = type.GetMembers("Forward").Any(m => m is not IMethodSymbol),
            };
        }

        /// <summary>
        /// Why the generator cannot add its members to this class (CNET0026), and where: a generic or static class, a
        /// generic containing type, or a name the generated code would have to write as a C# keyword; null when none.
        /// </summary>
        internal static (LocationInfo? Where, string Why)? DeclarationProblem(INamedTypeSymbol type, TypeDeclarationSyntax syntax)
        {
            var at = LocationInfo.From(syntax.Identifier.GetLocation());
            if (syntax is RecordDeclarationSyntax) return (at, "is a record: the generated members (parameters, workspace, Dispose) need a plain class; declare it 'partial class'");
            if (type.TypeParameters.Length > 0) return (LocationInfo.From(syntax.TypeParameterList) ?? at, "is generic: its generated code is written for one concrete class; remove the type parameters");
            if (type.IsStatic) return (at, "is static: a network is an instance that owns its parameters and workspace; remove 'static'");
            for (var t = type.ContainingType; t is not null; t = t.ContainingType)
                if (t.TypeParameters.Length > 0) return (at, $"is nested in the generic type '{t.ToDisplayString()}': its generated code is written for one concrete class; move it out");
            if (Keyword(type.Name)) return (at, $"is named with the C# keyword '{type.Name}': the generated code names the class; rename it");
            for (var t = type.ContainingType; t is not null; t = t.ContainingType)
                if (Keyword(t.Name)) return (at, $"is nested in '{t.Name}', a C# keyword: the generated code names the containing types; rename it");
            for (var n = type.ContainingNamespace; n is { IsGlobalNamespace: false }; n = n.ContainingNamespace)
                if (Keyword(n.Name)) return (at, $"is in the namespace '{n.Name}', a C# keyword: the generated code names the namespace; rename it");
            foreach (var forward in type.GetMembers("Forward").OfType<IMethodSymbol>())
            {
                // Several inputs or outputs become the generated methods' parameters, by name (one is always "input").
                var names = (forward.Parameters.Length > 1 ? forward.Parameters.Select(p => p.Name) : Enumerable.Empty<string>())
                    .Concat(TensorTuple(forward.ReturnType) ?? new List<string>());
                if (names.FirstOrDefault(Keyword) is { } keyword)
                    return (LocationInfo.From(forward.Locations.FirstOrDefault()) ?? at,
                        $"names an input or output of Forward '{keyword}', a C# keyword: the generated methods take a parameter of that name; rename it");
            }
            return null;
        }

        /// <summary>A layer property as the generator implements it: <c>partial</c>, one bodiless <c>get</c> without modifiers.
        /// Anything else (a setter, an init, a private get) would make the generated implementation the error.</summary>
        private static bool OnlyGetter(PropertyDeclarationSyntax p) =>
            p.Modifiers.Any(SyntaxKind.PartialKeyword) && p.ExpressionBody is null
            && p.AccessorList is { Accessors.Count: 1 } list && list.Accessors[0] is { Body: null, ExpressionBody: null, Modifiers.Count: 0 } get
            && get.IsKind(SyntaxKind.GetAccessorDeclaration);

        /// <summary>A reserved C# keyword (written <c>@int</c> in source; contextual keywords are ordinary names).</summary>
        internal static bool Keyword(string name) => SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None;

        /// <summary>The first declaration of the class or of a type containing it that lacks 'partial'.</summary>
        private static TypeDeclarationSyntax? FirstNonPartial(INamedTypeSymbol type, CancellationToken ct)
        {
            for (var t = type; t is not null; t = t.ContainingType)
                foreach (var r in t.DeclaringSyntaxReferences)
                    if (r.GetSyntax(ct) is TypeDeclarationSyntax tds && !tds.Modifiers.Any(SyntaxKind.PartialKeyword)) return tds;
            return null;
        }

        private static string NamespaceOf(INamedTypeSymbol type) => type.ContainingNamespace.IsGlobalNamespace ? "" : type.ContainingNamespace.ToDisplayString();

        private static EquatableArray<string> ContainingDeclarations(INamedTypeSymbol type)
        {
            var containing = new List<string>();
            for (var t = type.ContainingType; t is not null; t = t.ContainingType)
                containing.Insert(0, Declaration(t));
            return containing.ToEquatableArray();
        }

        /// <summary>The loss attributes of a class, in source order: the first decides the loss.</summary>
        private static (LossKind Loss, double Parameter) ReadLoss(INamedTypeSymbol type)
        {
            foreach (var a in type.GetAttributes())
                if (LossOf(a) is { } loss)
                    return (loss.Kind, loss.ParameterName is { } name ? NamedDouble(a, name) ?? loss.ParameterDefault : 0);
            return (LossKind.None, 0);
        }

        /// <summary>The loss an attribute declares, or null; <c>[CustomLoss(…, ClassIndices = true)]</c> is the class-index one.</summary>
        private static LossDefinition? LossOf(AttributeData a) =>
            Losses.ForAttribute(a.AttributeClass?.ToDisplayString() ?? "") is { } d && d.Kind == LossKind.Custom && a.NamedArguments.Any(n => n.Key == "ClassIndices" && n.Value.Value is true)
                ? Losses.Of(LossKind.CustomClassIndices)
                : Losses.ForAttribute(a.AttributeClass?.ToDisplayString() ?? "");

        private void Report(DiagnosticDescriptor d, LocationInfo? loc, params object[] args)
        {
            if (_pendingFix >= 0) { if (d.DefaultSeverity == DiagnosticSeverity.Error) _fixBroken = true; return; }
            _diagnostics.Add(DiagnosticInfo.Create(d, loc, args));
            if (d.DefaultSeverity == DiagnosticSeverity.Error) _failed = true;
        }

        // ---------------------------------------------------------------- the root class

        private NetworkSpec? ParseRoot(INamedTypeSymbol type, ClassDeclarationSyntax syntax)
        {
            // Every declaration of the class and of its containing types must be partial.
            if (FirstNonPartial(type, _ct) is { } notPartial)
            {
                Report(DiagnosticDescriptors.NotPartial, LocationInfo.From(notPartial.Identifier.GetLocation()), type.Name);
                return null;
            }
            if (DeclarationProblem(type, syntax) is var (where, why))
            {
                Report(DiagnosticDescriptors.UnsupportedDeclaration, where, type.Name, why);
                return null;
            }

            var netAttr = type.GetAttributes().FirstOrDefault(a => Is(a, "NetworkAttribute"));
            int maxBatch = NamedInt(netAttr, "MaxBatch") ?? 64;
            var (loss, lossParameter) = ReadLoss(type);
            var losses = type.GetAttributes().Where(a => Losses.ForAttribute(a.AttributeClass?.ToDisplayString() ?? "") is not null).ToList();
            bool severalOutputs = ForwardOutputNames(type) is not null;
            if (losses.Count > 1 && !severalOutputs)
            {
                // Two losses on one output would silently train on one of them.
                Report(DiagnosticDescriptors.SeveralLosses, Loc(losses[1]), type.Name, string.Join(", ", losses.Select(a => a.AttributeClass!.Name.Replace("Attribute", ""))));
                return null;
            }

            foreach (var a in losses)
            {
                var definition = Losses.ForAttribute(a.AttributeClass!.ToDisplayString())!;
                if (definition.CheckParameter(LossParameter(a, definition)) is { } wrong)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(a), definition.Name, wrong);
                    return null;
                }
                if (severalOutputs) continue;
                if (definition.Kind == LossKind.CosineEmbedding)
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(a), definition.Name, "it compares two embeddings: return both from Forward as a tuple and name them with Output and Second");
                // Output and Weight place a loss among several outputs' losses; with one output they would mean nothing (or only scale the learning rate).
                if (NamedString(a, "Output") is { } named)
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(a), definition.Name, $"Output = \"{named}\" names an element of the tuple Forward returns, but this Forward returns one tensor");
                else if (NamedDouble(a, "Weight") is { } weight && weight != 1)
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(a), definition.Name, "Weight weighs one loss among several outputs' losses; with one output it would only scale the learning rate");
                if (_failed) return null;
            }

            // A block: no [Input] and no loss. Its shapes come from where a network applies it; on its own it binds its
            // parameters and runs eagerly.
            if (loss == LossKind.None && !type.GetAttributes().Any(a => Is(a, "InputAttribute")))
                return ParseBlock(type, syntax);

            var body = ParseBody(type, syntax, "", out var inputName, out var inputShape, out int output, isRoot: true);
            bool tokens = type.GetAttributes().FirstOrDefault(a => Is(a, "InputAttribute")) is { } ia && IsTokenInput(ia);
            // While a fix is being checked the root's own checks run too: a loss the fixed network does not fit breaks it.
            if (body is null || (_failed && _pendingFix < 0)) return null;

            if (body.Outputs.Count > 1)
            {
                var heads = ReadHeadLosses(type, losses, body, out var method);
                if (heads is null || _failed) return null;
                var first = heads.Count > 0 ? heads[0] : null;
                return new NetworkSpec(
                    NamespaceOf(type), type.Name, Modifiers(syntax), ContainingDeclarations(type),
                    inputName!, inputShape, tokens, maxBatch, MaxSequence, first?.Kind ?? LossKind.None, first?.Parameter ?? 0,
                    _layers.ToEquatableArray(), _params.ToEquatableArray(), _ops.ToEquatableArray(), output)
                {
                    Inputs = _inputs.ToEquatableArray(),
                    Outputs = body.Outputs.Select((v, i) => new OutputSpec(body.OutputNames[i], v)).ToEquatableArray(),
                    HeadLosses = heads.ToEquatableArray(),
                    LossStart = method?.Start ?? -1, TargetInput = method?.Targets ?? -1, LossValue = method?.Value ?? -1,
                };
            }

            if (loss != LossKind.None) Losses.Of(loss).Check(this, LocationInfo.From(syntax.Identifier.GetLocation()), _ops[output], body.ReturnLocation);
            if (_failed) return null;
            var (weights, ignoreIndex) = ReadClassWeighting(losses.FirstOrDefault(), _ops[output]);
            if (_failed) return null;
            var custom = loss is LossKind.Custom or LossKind.CustomClassIndices ? ParseLossMethod(type, losses[0], output, Losses.Of(loss)) : null;
            if (_failed) return null;

            return new NetworkSpec(
                NamespaceOf(type), type.Name, Modifiers(syntax), ContainingDeclarations(type),
                inputName!, inputShape, tokens, maxBatch, MaxSequence, loss, lossParameter,
                _layers.ToEquatableArray(), _params.ToEquatableArray(), _ops.ToEquatableArray(), output)
            {
                Inputs = _inputs.ToEquatableArray(), LossWeights = weights, IgnoreIndex = ignoreIndex,
                LossStart = custom?.Start ?? -1, TargetInput = custom?.Targets ?? -1, LossValue = custom?.Value ?? -1,
            };
        }

        /// <summary>
        /// The losses of a network whose Forward returns several tensors: each names the output it trains (Output), at
        /// most one per output, with a finite, non-negative Weight; each is checked against its output's shape. Outputs
        /// are computed values with names of their own (the generated methods take a span per input and per output).
        /// </summary>
        private List<LossSpec>? ReadHeadLosses(INamedTypeSymbol type, List<AttributeData> losses, BodyResult body, out (int Start, int Targets, int Value)? method)
        {
            method = null;
            var names = body.OutputNames;
            string list = string.Join(", ", names);
            for (int i = 0; i < names.Count; i++)
            {
                string? why = _inputs.Any(x => x.Name == names[i]) ? $"output '{names[i]}' has the name of an input; the generated methods take a span of each name"
                    : names.Take(i).Contains(names[i]) ? $"two outputs are named '{names[i]}'"
                    : IsInputView(body.Outputs[i]) ? $"output '{names[i]}' is an input as it came in; return values the network computes" : null;
                if (why is null) continue;
                Report(DiagnosticDescriptors.InvalidArgument, body.OutputLocations[i], "Forward", why);
                return null;
            }
            var heads = new List<LossSpec>();
            foreach (var a in losses)
            {
                var d = LossOf(a)!;
                string? output = NamedString(a, "Output");
                int k = output is null ? -1 : names.IndexOf(output);
                double weight = NamedDouble(a, "Weight") ?? 1;
                string? why = output is null ? $"Forward returns several outputs ({list}); name the one this loss trains with Output = \"…\""
                    : k < 0 ? $"Output = \"{output}\" names no output of Forward; its outputs are {list}"
                    : heads.FirstOrDefault(h => h.Output == k || h.Output2 == k) is { } taken ? $"output '{output}' already has a loss ({Losses.Of(taken.Kind).Name}); each output takes one"
                    : !(weight >= 0) || double.IsInfinity(weight) ? $"Weight must be finite and not negative, got {weight.ToString(CultureInfo.InvariantCulture)}" : null;
                if (why is not null)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(a), d.Name, why);
                    return null;
                }
                var value = _ops[body.Outputs[k]];
                d.Check(this, Loc(a), value, body.OutputLocations[k]);
                var (weights, ignore) = ReadClassWeighting(a, value);
                int k2 = -1;
                if (d.Kind == LossKind.CosineEmbedding)
                {
                    // The second embedding: another output of the same shape.
                    string? second = NamedString(a, "Second");
                    k2 = second is null ? -1 : names.IndexOf(second);
                    string? bad = second is null ? $"name the output compared with '{output}' with Second = \"…\"; the outputs are {list}"
                        : k2 < 0 ? $"Second = \"{second}\" names no output of Forward; its outputs are {list}"
                        : k2 == k ? "Output and Second name the same output"
                        : heads.Any(h => h.Output == k2 || h.Output2 == k2) ? $"output '{second}' already has a loss; each output takes one"
                        : !_ops[body.Outputs[k2]].OutShape.SequenceEqual(value.OutShape) ? $"'{output}' is {Shape(value.OutShape)} but '{second}' is {Shape(_ops[body.Outputs[k2]].OutShape)}; the two embeddings must have one shape" : null;
                    if (bad is not null) Report(DiagnosticDescriptors.InvalidArgument, Loc(a), d.Name, bad);
                }
                // A loss method (one per class: the attribute does not repeat) reads its output; its ops follow Forward's.
                if (d is CustomLoss && !_failed) method = ParseLossMethod(type, a, body.Outputs[k], d);
                if (_failed) return null;
                heads.Add(new LossSpec(d.Kind, LossParameter(a, d), k, (float)weight, weights, ignore) { Output2 = k2 });
            }
            return heads;
        }

        /// <summary>
        /// <c>[CustomLoss(nameof(M))]</c>: <c>Tensor M(Tensor output, Tensor target)</c> walked like Forward, its first
        /// parameter the network's output and its second the targets (a new input shaped like the output); its ops follow
        /// Forward's. A trailing <c>.Mean()</c> is what the loss does anyway (the mean of the result). Layers are Forward's
        /// alone. Null after reporting.
        /// </summary>
        private (int Start, int Targets, int Value)? ParseLossMethod(INamedTypeSymbol type, AttributeData attribute, int output, LossDefinition loss)
        {
            string name = attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is string n ? n : "";
            var method = type.GetMembers(name).OfType<IMethodSymbol>()
                .FirstOrDefault(m => m.Parameters.Length == 2 && m.Parameters.All(q => IsTensor(q.Type)) && IsTensor(m.ReturnType));
            var decl = method?.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<MethodDeclarationSyntax>().FirstOrDefault();
            if (method is null || decl is null)
            {
                Report(DiagnosticDescriptors.InvalidArgument, Loc(attribute), "CustomLoss", $"{type.Name} has no method 'Tensor {name}(Tensor output, Tensor target)' to compile as its loss");
                return null;
            }
            int start = _ops.Count;
            // Class indices are one integer per sample (the method makes them targets with OneHot); else floats shaped like the output.
            var shape = loss.ClassIndices ? Array.Empty<int>() : ShapeOf(output);
            int targets = AddOp(OpKind.Input, -1, -1, -1, shape, shape, Array.Empty<int>(), loss.ClassIndices ? 1 : 0, loss.TargetName);
            var env = new Dictionary<string, int>(StringComparer.Ordinal)
            {
                [method.Parameters[0].Name] = output,
                [method.Parameters[1].Name] = targets,
            };
            var walker = new ForwardWalker(this, _compilation.GetSemanticModel(decl.SyntaxTree), new Dictionary<string, LayerRef>(StringComparer.Ordinal),
                loss.ClassIndices ? $"the logits {Shape(ShapeOf(output))} and labels" : $"the output {Shape(shape)} and targets");
            int value = walker.LossBody(decl, env);
            return value < 0 ? null : (start, targets, value);
        }

        /// <summary>The value is a network input, or a view of one (its values as they came in).</summary>
        private bool IsInputView(int value)
        {
            var op = _ops[value];
            while (op.Kind != OpKind.Input && OpTable.Of(op.Kind).IsView && op.Input >= 0) op = _ops[op.Input];
            return op.Kind == OpKind.Input;
        }

        /// <summary>The names of the tuple Forward returns (<c>Item1</c>… where unnamed), or null when it returns one tensor.</summary>
        internal static List<string>? ForwardOutputNames(INamedTypeSymbol type) =>
            type.GetMembers("Forward").OfType<IMethodSymbol>().Select(m => TensorTuple(m.ReturnType)).FirstOrDefault(n => n is not null);

        /// <summary>The element names of a tuple of two or more tensors, else null.</summary>
        private static List<string>? TensorTuple(ITypeSymbol t) =>
            t is INamedTypeSymbol { IsTupleType: true } tuple && tuple.TupleElements.Length > 1 && tuple.TupleElements.All(e => IsTensor(e.Type))
                ? tuple.TupleElements.Select(e => e.Name).ToList() : null;

        private static double LossParameter(AttributeData a, LossDefinition d) => d.ParameterName is { } name ? NamedDouble(a, name) ?? d.ParameterDefault : 0;

        private NetworkSpec? ParseBlock(INamedTypeSymbol type, ClassDeclarationSyntax syntax)
        {
            _parsingBlock = true;
            ParseLayerProperties(type, "", isRoot: true);
            _parsingBlock = false;
            bool hasForward = type.GetMembers("Forward").OfType<IMethodSymbol>().Any(m => m.Parameters.Length == 1 && IsTensor(m.Parameters[0].Type) && IsTensor(m.ReturnType));
            if (!hasForward) Report(DiagnosticDescriptors.MissingForward, LocationInfo.From(syntax.Identifier.GetLocation()), type.Name, "x", "no such method was found");
            if (_failed) return null;
            return new NetworkSpec(
                NamespaceOf(type), type.Name, Modifiers(syntax), ContainingDeclarations(type),
                "x", EquatableArray<int>.Empty, false, 0, 0, LossKind.None, 0,
                _layers.ToEquatableArray(), _params.ToEquatableArray(), EquatableArray<OpSpec>.Empty, -1, IsBlock: true);
        }

        private static string Declaration(INamedTypeSymbol t)
        {
            string kind = t.TypeKind == TypeKind.Struct ? (t.IsRecord ? "record struct" : "struct") : t.IsRecord ? "record" : t.TypeKind == TypeKind.Interface ? "interface" : "class";
            string stat = t.IsStatic ? "static " : "";
            return $"{stat}partial {kind} {t.Name}";
        }

        private static string Modifiers(ClassDeclarationSyntax syntax) =>
            string.Join(" ", syntax.Modifiers.Where(m => !m.IsKind(SyntaxKind.PartialKeyword)).Select(m => m.Text));

        // ---------------------------------------------------------------- one class (root or inlined sub-network)

        private sealed class BodyResult : IReturnLocationSink
        {
            public LocationInfo? ReturnLocation;
            /// <summary>The values of the tuple Forward returns (empty: it returns one tensor), their names and where each is written.</summary>
            public List<int> Outputs = new();
            public List<string> OutputNames = new();
            public List<LocationInfo?> OutputLocations = new();
            public void Set(LocationInfo? l) => ReturnLocation = l;
            public void SetOutputs(List<int> values, List<LocationInfo?> locations) { Outputs = values; OutputLocations = locations; }
        }

        /// <summary>Parses a class's layers and Forward; appends its layers/params/ops (prefixed) and returns the output value.</summary>
        private BodyResult? ParseBody(INamedTypeSymbol type, ClassDeclarationSyntax syntax, string prefix, out string? inputName, out EquatableArray<int> inputShape,
            out int output, bool isRoot, int inputValue = -1)
        {
            inputName = null; inputShape = EquatableArray<int>.Empty; output = -1;
            var inputAttrs = type.GetAttributes().Where(a => Is(a, "InputAttribute")).ToList();
            var inputAttr = inputAttrs.FirstOrDefault();
            if (inputAttr is null && inputValue < 0)
            {
                Report(DiagnosticDescriptors.MissingInput, LocationInfo.From(syntax.Identifier.GetLocation()), type.Name);
                return null;
            }
            if (inputAttrs.Count > 1 && !isRoot)
            {
                Report(DiagnosticDescriptors.InvalidArgument, Loc(inputAttrs[1]), "Input", $"{type.Name} is applied as a layer, which gives it one input; only the network itself takes several");
                return null;
            }
            // A block without [Input] takes the shape of whatever it is applied to.
            var declared = inputAttr is null ? new List<(string Name, int[] Shape, AttributeData? Attr)> { ("x", ShapeOf(inputValue), null) }
                : inputAttrs.Select(a => { var (n, sh) = ReadInput(a); return (Name: n, Shape: sh, Attr: (AttributeData?)a); }).ToList();
            var (name, shape) = (declared[0].Name, declared[0].Shape);
            inputName = name; inputShape = shape.ToEquatableArray();
            for (int k = 0; k < declared.Count; k++)
            {
                var (inName, inShape, attr) = declared[k];
                if (attr is null) continue;
                if (!CheckInputShape(attr, inShape)) return null;
                if (declared.Take(k).Any(d => d.Name == inName))
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", $"two inputs are named '{inName}'; each binds to its own Forward parameter");
                    return null;
                }
                if (isRoot && inShape[0] == Sequence)
                {
                    int max = NamedInt(attr, "MaxSequence") ?? 128;
                    if (max <= 0)
                    {
                        Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", $"MaxSequence must be positive, got {max}");
                        return null;
                    }
                    // Every sequence input shares the batch's T and its mask, so they share the bound too.
                    if (MaxSequence > 0 && max != MaxSequence)
                    {
                        Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", $"MaxSequence is {max} here but {MaxSequence} on an earlier input; sequence inputs share one length T");
                        return null;
                    }
                    MaxSequence = max;
                }
                if (TooLarge(inShape) is { } why)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", why);
                    return null;
                }
            }

            // A sub-network applied again (the same property, the same prefix) reuses its layers: the weights are shared.
            if (isRoot || !_bodies.TryGetValue(prefix, out var layerIndex))
            {
                layerIndex = ParseLayerProperties(type, prefix, isRoot);
                if (!isRoot) _bodies[prefix] = layerIndex;
            }

            // The network itself may return several tensors (a tuple); a block returns one.
            var forward = type.GetMembers("Forward").OfType<IMethodSymbol>()
                .FirstOrDefault(m => m.Parameters.Length == declared.Count && m.Parameters.All(q => IsTensor(q.Type)) && (IsTensor(m.ReturnType) || isRoot && TensorTuple(m.ReturnType) is not null));
            // Several inputs bind to Forward's parameters by name (and the generated methods take them in its order).
            string expected = string.Join(", Tensor ", declared.Select(d => d.Name));
            if (forward is null)
            {
                Report(DiagnosticDescriptors.MissingForward, LocationInfo.From(syntax.Identifier.GetLocation()), type.Name, expected, "no such method was found");
                return null;
            }
            if (declared.Count > 1 && forward.Parameters.FirstOrDefault(q => declared.All(d => d.Name != q.Name)) is { } stray)
            {
                Report(DiagnosticDescriptors.MissingForward, LocationInfo.From(stray.Locations.FirstOrDefault()), type.Name, expected, $"parameter '{stray.Name}' is not the name of an [Input]");
                return null;
            }
            var decl = forward.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<MethodDeclarationSyntax>().FirstOrDefault();
            if (decl is null) return null;
            var fwdModel = _compilation.GetSemanticModel(decl.SyntaxTree);

            var env = new Dictionary<string, int>(StringComparer.Ordinal);
            string inputText = Shape(shape);
            if (declared.Count == 1)
            {
                int input = inputValue;
                if (input < 0)
                {
                    input = AddOp(OpKind.Input, -1, -1, -1, shape, shape, Array.Empty<int>(), inputAttr is not null && IsTokenInput(inputAttr) ? 1 : 0, "input");
                    if (isRoot) _inputs.Add(new InputSpec("input", shape.ToEquatableArray(), inputAttr is not null && IsTokenInput(inputAttr), input));
                }
                env[decl.ParameterList.Parameters[0].Identifier.ValueText] = input;
            }
            else
            {
                foreach (var parameter in forward.Parameters)
                {
                    var d = declared.First(x => x.Name == parameter.Name);
                    bool tokens = IsTokenInput(d.Attr!);
                    int input = AddOp(OpKind.Input, -1, -1, -1, d.Shape, d.Shape, Array.Empty<int>(), tokens ? 1 : 0, d.Name);
                    _inputs.Add(new InputSpec(d.Name, d.Shape.ToEquatableArray(), tokens, input));
                    env[parameter.Name] = input;
                }
                inputText = string.Join(", ", _inputs.Select(i => $"{i.Name} {Shape(i.Shape)}"));
            }
            var walker = new ForwardWalker(this, fwdModel, layerIndex, inputText);
            var result = new BodyResult();
            output = walker.Body(decl, env, result);
            if (output < 0) { _failed = true; return null; }
            var names = TensorTuple(forward.ReturnType);
            if (isRoot && names is null && IsInputView(output))
            {
                // No op between the input and the loss: nothing to compute, train or take a gradient through (several
                // outputs say the same in ReadHeadLosses). Quiet while the Forward is half typed (`=> x` before `.Apply`)
                // or the class has an error already (a placeholder Forward beside it is not a second mistake to report).
                if (_failed || ForwardWalker.HalfTyped(decl)) FailQuietly();
                else Report(DiagnosticDescriptors.InvalidArgument, result.ReturnLocation, "Forward", "Forward returns its input as it came in; return a value the network computes");
                return null;
            }
            if (names is not null)
            {
                if (result.Outputs.Count != names.Count)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, result.ReturnLocation, "Forward", $"Forward returns a tuple of {names.Count} tensors; return it as a tuple literal ({string.Join(", ", names)})");
                    return null;
                }
                result.OutputNames = names;
            }

            foreach (var l in layerIndex.Values)
                if (!l.Used && isRoot)
                    Report(DiagnosticDescriptors.UnusedLayer, l.Location, l.Property);
            return result;
        }

        /// <summary>The class's layer properties by name; an invalid one maps to a placeholder so its uses stay quiet.</summary>
        private Dictionary<string, LayerRef> ParseLayerProperties(INamedTypeSymbol type, string prefix, bool isRoot)
        {
            var layerIndex = new Dictionary<string, LayerRef>(StringComparer.Ordinal);
            foreach (var prop in type.GetMembers().OfType<IPropertySymbol>())
            {
                _ct.ThrowIfCancellationRequested();
                int before = _diagnostics.Count;
                var r = ParseLayerProperty(prop, prefix, isRoot);
                if (r is not null) layerIndex[prop.Name] = r;
                // An invalid layer was already reported: uses of it in Forward stay quiet instead of cascading.
                else if (_diagnostics.Count > before) layerIndex[prop.Name] = new LayerRef { Property = prop.Name, Layer = -1, Used = true };
            }
            return layerIndex;
        }

        /// <summary>One [Input]'s shape: at least one dimension, each positive, the sequence dimension only first (every
        /// later op keeps it leading, so the emitter treats it as a second batch-like dimension). False after reporting.</summary>
        private bool CheckInputShape(AttributeData attr, int[] shape)
        {
            if (shape.Length == 0)
            {
                Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", "give at least one per-sample dimension");
                return false;
            }
            for (int d = 0; d < shape.Length; d++)
            {
                if (shape[d] == Sequence && d == 0) continue;
                if (shape[d] == Sequence)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", $"the sequence dimension (Dim.Sequence) must be the first per-sample dimension, but it is dimension {d} of {Shape(shape)}");
                    return false;
                }
                if (shape[d] <= 0)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, Loc(attr), "Input", $"dimension {d} is {shape[d]}; dimensions must be positive (or Dim.Sequence for a bounded sequence length)");
                    return false;
                }
            }
            return true;
        }

        /// <summary>[CrossEntropyLoss(Weights = …, IgnoreIndex = …)]: one finite, non-negative weight per class of the output.</summary>
        private (EquatableArray<float> Weights, int IgnoreIndex) ReadClassWeighting(AttributeData? loss, OpSpec output)
        {
            if (loss is null) return (EquatableArray<float>.Empty, int.MinValue);
            int ignore = NamedInt(loss, "IgnoreIndex") ?? int.MinValue;
            var named = loss.NamedArguments.FirstOrDefault(n => n.Key == "Weights").Value;
            if (named.Kind != TypedConstantKind.Array || named.IsNull) return (EquatableArray<float>.Empty, ignore);
            var weights = named.Values.Select(v => Convert.ToSingle(v.Value, CultureInfo.InvariantCulture)).ToArray();
            int classes = output.OutShape.Count == 1 ? output.OutShape[0] : -1;
            string? why = weights.Length != classes ? $"Weights has {weights.Length} values but the network outputs {classes} classes"
                : weights.Any(w => !(w >= 0) || float.IsInfinity(w)) ? "class weights must be finite and not negative" : null;
            if (why is not null) Report(DiagnosticDescriptors.InvalidArgument, Loc(loss), loss.AttributeClass!.Name.Replace("Attribute", ""), why);
            return (weights.ToEquatableArray(), ignore);
        }

        /// <summary>True for <c>[Input(..., Kind = InputKind.TokenIds)]</c>.</summary>
        internal static bool IsTokenInput(AttributeData a) =>
            a.NamedArguments.Any(n => n.Key == "Kind" && n.Value.Value is int k && k == 1);

        private static (string Name, int[] Shape) ReadInput(AttributeData a)
        {
            string name = "x";
            var dims = new List<int>();
            foreach (var arg in a.ConstructorArguments)
            {
                if (arg.Kind == TypedConstantKind.Array) dims.AddRange(arg.Values.Select(v => Convert.ToInt32(v.Value, CultureInfo.InvariantCulture)));
                else if (arg.Value is string s) name = s;
                else if (arg.Value is int i) dims.Add(i);
            }
            return (name, dims.ToArray());
        }

        // ---------------------------------------------------------------- layer properties

        /// <summary>What Forward can refer to: a layer (index into _layers) or a sub-network (type + copies).</summary>
        internal sealed class LayerRef
        {
            public string Property = "";
            public int Layer = -1;
            public INamedTypeSymbol? SubNetwork;
            public ClassDeclarationSyntax? SubSyntax;
            public int Copies = 1;
            public string StateName = "";
            public string Prefix = "";
            public LocationInfo? Location;
            public bool Used;
            public AttributeArgs? ArgLocations;
            /// <summary>A sub-network's block arguments ([SubNetwork(Args = …)]), or null.</summary>
            public int[]? Args;
        }

        private LayerRef? ParseLayerProperty(IPropertySymbol prop, string prefix, bool isRoot)
        {
            var attrs = prop.GetAttributes();
            var layerAttr = attrs.FirstOrDefault(a => a.AttributeClass is { } c && InheritsFrom(c, Ns + "LayerAttribute"));
            var subAttr = attrs.FirstOrDefault(a => Is(a, "SubNetworkAttribute"));
            if (layerAttr is null && subAttr is null) return null;

            var propSyntax = prop.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<PropertyDeclarationSyntax>().FirstOrDefault();
            var loc = LocationInfo.From(propSyntax?.Identifier.GetLocation());
            if (propSyntax is not null && !OnlyGetter(propSyntax) && isRoot)
            {
                Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, "must be declared 'partial' with only a getter so the generator can implement it");
                return null;
            }
            if (Keyword(prop.Name))
            {
                Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, $"is named with the C# keyword '{prop.Name}': the generator implements it by name; rename it");
                return null;
            }
            var stateAttr = attrs.FirstOrDefault(a => Is(a, "StateNameAttribute"));
            string state = stateAttr?.ConstructorArguments.FirstOrDefault().Value as string ?? SnakeCase(prop.Name);
            if (stateAttr is not null && !ValidStateName(state))
            {
                Report(DiagnosticDescriptors.InvalidArgument, Loc(stateAttr), "StateName",
                    $"'{state}' is not a state-dict name: dot-separated parts of letters, digits, '_' or '-', none empty (\"encoder.layer\", \"LayerNorm\")");
                return null;
            }
            string modifiers = propSyntax is null ? "public partial" : string.Join(" ", propSyntax.Modifiers.Select(m => m.Text));
            var r = new LayerRef { Property = prop.Name, Location = loc, StateName = state, Prefix = prefix };

            if (subAttr is not null)
            {
                int copies = subAttr.ConstructorArguments.Length > 0 && subAttr.ConstructorArguments[0].Value is int n ? n : 1;
                var elem = prop.Type is IArrayTypeSymbol arr ? arr.ElementType as INamedTypeSymbol : prop.Type as INamedTypeSymbol;
                bool isArray = prop.Type is IArrayTypeSymbol;
                var subSyntax = elem?.DeclaringSyntaxReferences.Select(s => s.GetSyntax(_ct)).OfType<ClassDeclarationSyntax>().FirstOrDefault();
                if (elem is null || subSyntax is null || !elem.GetAttributes().Any(a => Is(a, "NetworkAttribute")))
                {
                    Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, "has [SubNetwork] but its type is not a [Network] class of this compilation");
                    return null;
                }
                // A block that gets no generated members (not partial, or a declaration the generator cannot extend) has
                // its own error; code built on it would only add errors in generated files, so this class gets a
                // skeleton too, quietly, and its uses of the property stay quiet.
                if (FirstNonPartial(elem, _ct) is not null || DeclarationProblem(elem, subSyntax) is not null)
                {
                    FailQuietly();
                    return new LayerRef { Property = prop.Name, Layer = -1, Used = true };
                }
                if (copies < 1 || (copies > 1) != isArray)
                {
                    Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, copies > 1 ? $"stacks {copies} sub-networks, so its type must be {elem.Name}[]" : $"declares a single sub-network, so its type must be {elem.Name}, not an array");
                    return null;
                }
                if (copies > MaxOps)
                {
                    Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, $"stacks {copies} sub-networks; Forward is unrolled into at most {MaxOps} operations");
                    return null;
                }
                if (_depth > 8) { Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, "nests sub-networks more than 8 deep (a cycle?)"); return null; }
                // Its block arguments, themselves possibly the enclosing block's placeholders.
                var given = subAttr.NamedArguments.Where(a => a.Key == "Args").Select(a => a.Value).FirstOrDefault();
                int[]? blockArgs = given.Kind == TypedConstantKind.Array && !given.IsNull ? given.Values.Select(v => v.Value is int i ? i : 0).ToArray() : null;
                for (int i = 0; blockArgs is not null && i < blockArgs.Length; i++)
                {
                    blockArgs[i] = ResolvePlaceholder(blockArgs[i], loc, prop.Name, out _);
                    if (blockArgs[i] == int.MinValue) return null;
                }
                r.SubNetwork = elem; r.SubSyntax = subSyntax; r.Copies = copies; r.Args = blockArgs;
                // The property itself (for the root's emitted getter: its copies, then its arguments); the sub-network's own
                // layers are appended when it is inlined.
                _layers.Add(new LayerSpec(prop.Name, prefix + state, LayerKind.SubNetwork, new[] { copies }.Concat(blockArgs ?? Array.Empty<int>()).ToEquatableArray(), 0, 0, false, modifiers,
                    "_" + SnakeCase(prop.Name), isRoot, elem.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat)));
                r.Layer = _layers.Count - 1;
                return r;
            }

            // Arguments C# cannot bind (kernel: (1, 5)) are the compiler's error to report; read as zeros they would add a
            // false one of ours. The layer is skipped quietly and the class gets its skeleton.
            if (layerAttr!.AttributeConstructor is null || layerAttr.ConstructorArguments.Any(a => a.Kind == TypedConstantKind.Error))
            {
                _failed = true;
                return new LayerRef { Property = prop.Name, Layer = -1, Used = true };
            }
            string attrName = layerAttr.AttributeClass!.Name;
            var def = OpTable.ForAttribute(attrName);
            if (def?.Layer is not { } kind) { Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, $"uses an unknown layer attribute '{attrName}'"); return null; }
            string expectedType = kind.ToString();
            if (prop.Type.ToDisplayString() != Ns + expectedType)
            {
                Report(DiagnosticDescriptors.BadLayerProperty, loc, prop.Name, $"has [{expectedType}] so its type must be Compiled.Nets.{expectedType}, not {prop.Type.ToDisplayString()}");
                return null;
            }

            // The op's argument schema: integers and reals in order, the bias flag, then its rules.
            var args = new AttributeArgs(layerAttr, _ct);
            var schema = def.Arguments;
            var intArgs = schema.Where(a => a.Kind == ArgumentKind.Int).ToList();
            var ints = intArgs.Select(a => args.Int(a.Name, (int)a.Default)).ToArray();
            bool placeholders = false;
            for (int i = 0; i < ints.Length; i++)
            {
                if (ints[i] == int.MinValue) continue; // an unset optional argument (Embedding's PaddingIdx), not a placeholder
                int resolved = ResolvePlaceholder(ints[i], args.Location(intArgs[i].Name), prop.Name, out bool kept);
                if (resolved == int.MinValue) return null;
                ints[i] = resolved;
                placeholders |= kept;
            }
            var reals = schema.Where(a => a.Kind == ArgumentKind.Real).Select(a => args.Double(a.Name, a.Default)).ToArray();
            bool bias = schema.Any(a => a.Kind == ArgumentKind.Bias) ? args.Bool("bias", true) : def.AlwaysHasBias;
            def.Normalize(ints);
            // A block's placeholders are checked where it is applied, with its arguments.
            if (!placeholders && !CheckArguments(def, args, prop.Name, ints, reals, new LayerDeclaration(prop.Name, expectedType, args, isRoot, ints, reals))) return null;
            double real = reals.Length > 0 ? reals[0] : 0, real2 = reals.Length > 1 ? reals[1] : 0;
            string full = prefix + state;

            string field = "_" + SnakeCase(prefix.Replace(".", "_") + prop.Name).Replace("__", "_");
            _layers.Add(new LayerSpec(prop.Name, full, kind, ints.ToEquatableArray(), real, real2, bias, modifiers, field, isRoot, ""));
            r.Layer = _layers.Count - 1;
            r.ArgLocations = args;
            if (!AddParameters(_layers[r.Layer], loc)) return null;
            return r;
        }

        /// <summary>
        /// A layer argument with the inlined block's arguments substituted for its BlockArg placeholders; a placeholder
        /// stays (<paramref name="kept"/>) while a block is parsed on its own. int.MinValue after reporting.
        /// </summary>
        private int ResolvePlaceholder(int value, LocationInfo? location, string property, out bool kept)
        {
            kept = false;
            int index = PlaceholderIndex(value);
            if (index == -1) return value;
            if (index == -2)
            {
                Report(DiagnosticDescriptors.InvalidArgument, location, property, "a block argument (BlockArg.A … BlockArg.H) is used as it is, not in arithmetic");
                return int.MinValue;
            }
            string name = "BlockArg." + (char)('A' + index);
            if (_blockArgs is not null && index < _blockArgs.Length) return _blockArgs[index];
            if (_blockArgs is null && _parsingBlock) { kept = true; return value; }
            if (_applying is null)
            {
                Report(DiagnosticDescriptors.InvalidArgument, location, property, $"{name} is a block's argument: it belongs in a [Network] without [Input] (a block), given where the block is applied");
                return int.MinValue;
            }
            string given = _blockArgs is null ? "no block arguments" : $"{_blockArgs.Length} block argument{(_blockArgs.Length == 1 ? "" : "s")}";
            Report(DiagnosticDescriptors.InvalidArgument, _applying.Location ?? location, _applying.Property,
                $"{property} uses {name}, but [SubNetwork] gives {given}: write [SubNetwork(Args = new[] {{ … }})] with at least {index + 1}");
            return int.MinValue;
        }

        /// <summary>The schema's rules in order of kind (positive, not negative), the op's own checks, then probabilities.</summary>
        private bool CheckArguments(OpDefinition def, AttributeArgs args, string prop, int[] ints, double[] reals, LayerDeclaration declaration)
        {
            var intArgs = def.Arguments.Where(a => a.Kind == ArgumentKind.Int).ToList();
            var realArgs = def.Arguments.Where(a => a.Kind == ArgumentKind.Real).ToList();
            for (int i = 0; i < intArgs.Count; i++)
                if (intArgs[i].Rule == ArgumentRule.Positive && ints[i] <= 0)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, args.Location(intArgs[i].Name), prop, $"{intArgs[i].Name} must be positive, got {ints[i]}");
                    return false;
                }
            for (int i = 0; i < intArgs.Count; i++)
                if (intArgs[i].Rule == ArgumentRule.NonNegative && ints[i] < 0)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, args.Location(intArgs[i].Name), prop, $"{intArgs[i].Name} must not be negative, got {ints[i]}");
                    return false;
                }
            for (int i = 0; i < realArgs.Count; i++)
                if (!SourceWriter.IsFiniteFloat(reals[i]))
                {
                    Report(DiagnosticDescriptors.InvalidArgument, args.Location(realArgs[i].Name), prop, $"{realArgs[i].Name} must be a finite float, got {reals[i].ToString(CultureInfo.InvariantCulture)}");
                    return false;
                }
            for (int i = 0; i < realArgs.Count; i++)
                if (realArgs[i].Rule == ArgumentRule.NonNegative && reals[i] < 0)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, args.Location(realArgs[i].Name), prop, $"{realArgs[i].Name} must not be negative, got {reals[i].ToString(CultureInfo.InvariantCulture)}");
                    return false;
                }
            if (!def.Check(this, declaration)) return false;
            for (int i = 0; i < realArgs.Count; i++)
                if (realArgs[i].Rule == ArgumentRule.Probability && (reals[i] < 0 || reals[i] >= 1))
                {
                    Report(DiagnosticDescriptors.InvalidArgument, args.Location(realArgs[i].Name), prop, $"dropout probability {reals[i].ToString(CultureInfo.InvariantCulture)} is outside [0, 1)");
                    return false;
                }
            return true;
        }

        /// <summary>A name PyTorch's modules could have: no empty part between dots, no quote, space or other symbol.</summary>
        private static bool ValidStateName(string name) =>
            name.Split('.').All(part => part.Length > 0 && part.All(ch => ch < 128 && (char.IsLetterOrDigit(ch) || ch is '_' or '-')));

        /// <summary>The layer's parameters and buffers, each under its own state-dict name and field; false after reporting
        /// one too large to hold or a name another layer's parameter already has.</summary>
        private bool AddParameters(LayerSpec l, LocationInfo? loc)
        {
            bool ok = true;
            OpTable.Of(l.Kind).DeclareParameters(l, (suffix, shape, role, init, buffer) =>
            {
                if (!ok) return;
                string name = l.StateName + "." + suffix;
                long values = shape.Aggregate(1L, (a, d) => a * d);
                if (values > MaxValues && shape.All(d => d > 0)) // a block on its own keeps its BlockArg placeholders (negative)
                {
                    Report(DiagnosticDescriptors.InvalidArgument, loc, l.Property, $"its {suffix} [{string.Join(", ", shape)}] would hold {values.ToString("N0", CultureInfo.InvariantCulture)} values, more than the {MaxValues.ToString("N0", CultureInfo.InvariantCulture)} one tensor holds");
                    ok = false;
                    return;
                }
                if (_paramNames.Contains(name) && _params.First(p => p.Name == name) is { } taken)
                {
                    string other = _layers.FirstOrDefault(x => x != l && x.Kind != LayerKind.SubNetwork && taken.Name.StartsWith(x.StateName + ".", StringComparison.Ordinal))?.Property is { } p
                        ? $"'{p}'" : "another layer";
                    Report(DiagnosticDescriptors.BadLayerProperty, loc, l.Property,
                        $"would store a parameter as '{name}', as {other} does: give one of them another [StateName]");
                    ok = false;
                    return;
                }
                // Distinct state names can still meet in a field name ("a.b" and "a_b"): the field is numbered then.
                string plain = "_p_" + l.StateName.Replace('.', '_') + "_" + suffix.Replace('.', '_'), field = plain;
                for (int n = 2; _paramFields.Contains(field); n++) field = plain + n.ToString(CultureInfo.InvariantCulture);
                _params.Add(new ParamSpec(field, name, shape.ToEquatableArray(), role, init, buffer));
                _paramNames.Add(name);
                _paramFields.Add(field);
            });
            return ok;
        }

        // ---------------------------------------------------------------- ops

        internal int AddOp(OpKind kind, int input, int input2, int layer, int[] inShape, int[] outShape, int[] ints, double real, string label)
        {
            _ops.Add(new OpSpec(_ops.Count, kind, input, input2, layer, inShape.ToEquatableArray(), outShape.ToEquatableArray(), ints.ToEquatableArray(), real, label));
            return _ops.Count - 1;
        }

        internal int[] ShapeOf(int value) => _ops[value].OutShape.ToArray();

        /// <summary>The most values one tensor may hold per sample, or one parameter in all: spans and arrays are int-indexed.</summary>
        internal const long MaxValues = int.MaxValue;

        /// <summary>
        /// Why a per-sample shape cannot be a tensor (T at MaxSequence): more than <see cref="MaxValues"/> values, or a
        /// dimension that a shape rule's arithmetic overflowed; null when it fits.
        /// </summary>
        internal string? TooLarge(IReadOnlyList<int> shape)
        {
            long total = 1;
            foreach (int d in shape)
            {
                if (d <= 0 && d != Sequence) return $"a dimension overflows: a tensor holds at most {MaxValues.ToString("N0", CultureInfo.InvariantCulture)} values per sample";
                total *= d == Sequence ? Math.Max(1, MaxSequence) : d;
                if (total > MaxValues)
                    return $"{Shape(shape.ToArray())} would hold more than {MaxValues.ToString("N0", CultureInfo.InvariantCulture)} values per sample, the most one tensor holds";
            }
            return null;
        }

        /// <summary>The most ops a Forward may unroll into (BERT-base unrolls into about 600): loops stop there with an error.</summary>
        internal const int MaxOps = 10_000;

        internal int OpCount => _ops.Count;

        /// <summary>True when the value holds token ids (the input of a TokenIds network; Real = 1 marks it).</summary>
        internal bool IsTokens(int value) => _ops[value].Kind == OpKind.Input && _ops[value].Real == 1;

        /// <summary>How messages name the producer of a value: "Flatten", "ReLU", "Conv2", "the input".</summary>
        internal string Describe(int value) =>
            _ops[value].Kind == OpKind.Input && _inputs.Count > 1 ? $"the input '{_ops[value].Label}'" : OpTable.Of(_ops[value].Kind).ProducerName ?? _ops[value].Label;

        /// <summary>For a value produced by Flatten (possibly through elementwise ops), the shape that was flattened.</summary>
        internal int[]? PreFlattenShape(int value)
        {
            var op = _ops[value];
            while (OpTable.Of(op.Kind).IsElementwise) op = _ops[op.Input];
            return op.Kind == OpKind.Flatten && op.Ints.Count == 0 ? op.InShape.ToArray() : null; // a whole Flatten, not Flatten(start)
        }
        internal LayerSpec Layer(int index) => _layers[index];
        internal void ReportPublic(DiagnosticDescriptor d, LocationInfo? loc, params object[] args) => Report(d, loc, args);

        /// <summary>Fails without a diagnostic of its own, where C# already reports the code (the class gets its skeleton).</summary>
        internal void FailQuietly()
        {
            if (_pendingFix >= 0) _fixBroken = true;
            else _failed = true;
        }

        /// <summary>Reports a diagnostic whose flagged expression a code fix can replace with <paramref name="replacement"/>.</summary>
        internal void ReportWithFix(DiagnosticDescriptor d, LocationInfo? loc, string replacement, params object[] args)
        {
            if (_pendingFix >= 0) { _fixBroken = true; return; }
            _diagnostics.Add(DiagnosticInfo.Create(d, loc, args) with { Replacement = replacement });
            if (d.DefaultSeverity == DiagnosticSeverity.Error) _failed = true;
        }

        /// <summary>
        /// Reports a size mismatch whose flagged argument a code fix can replace. Returns true when the walk should go
        /// on as if the fix were applied (to learn whether the fix alone makes the network build); false after a
        /// first mismatch, whose fix this one shows to be not enough.
        /// </summary>
        internal bool ReportFixable(DiagnosticDescriptor d, LocationInfo? loc, string replacement, params object[] args)
        {
            if (_pendingFix >= 0) { _fixBroken = true; return false; }
            // An error already stands elsewhere (a layer declaration): this fix alone cannot make the network build. Inside
            // a block with arguments the flagged text is a placeholder other applications share: no fix either.
            if (_failed || _blockArgs is not null) { Report(d, loc, args); return false; }
            _diagnostics.Add(DiagnosticInfo.Create(d, loc, args) with { Replacement = replacement });
            _failed = true;
            _pendingFix = _diagnostics.Count - 1;
            return true;
        }

        /// <summary>The fix being checked leaves the network with an error of its own.</summary>
        internal void FixIsNotEnough() => _fixBroken = true;

        /// <summary>Inlines a sub-network: parses its class with a prefix and feeds it the given value.</summary>
        /// <summary>Applies a sub-network (each copy in turn, or only <paramref name="only"/>) to a value; -1 after reporting.</summary>
        internal int Inline(LayerRef sub, int input, LocationInfo? at, string inputText, int only = -1)
        {
            int x = input;
            for (int copy = 0; copy < sub.Copies; copy++)
            {
                if (only >= 0 && copy != only) continue;
                string prefix = sub.Prefix + sub.StateName + "." + (sub.Copies > 1 ? copy.ToString(CultureInfo.InvariantCulture) + "." : "");
                var subInput = sub.SubNetwork!.GetAttributes().FirstOrDefault(a => Is(a, "InputAttribute"));
                if (subInput is not null)
                {
                    var (_, expected) = ReadInput(subInput);
                    var actual = ShapeOf(x);
                    if (!expected.SequenceEqual(actual))
                    {
                        Report(DiagnosticDescriptors.FeatureMismatch, at, $"{sub.Property} ({sub.SubNetwork.Name})", $"input {Shape(expected)}", "its input", Shape(actual), inputText, "");
                        return -1;
                    }
                }
                _depth++;
                var (outerArgs, outerApplying) = (_blockArgs, _applying);
                (_blockArgs, _applying) = (sub.Args, sub);
                var res = ParseBody(sub.SubNetwork, sub.SubSyntax!, prefix, out _, out _, out int output, isRoot: false, inputValue: x);
                (_blockArgs, _applying) = (outerArgs, outerApplying);
                _depth--;
                if (res is null || output < 0) return -1;
                x = output;
            }
            return x;
        }

        // ---------------------------------------------------------------- helpers

        internal static string Shape(IEnumerable<int> dims) { var d = dims.ToArray(); return d.Length == 0 ? "scalar" : string.Join("×", d.Select(Dim)); }
        internal static string ShapeBracket(IEnumerable<int> dims) => "[" + string.Join(", ", dims.Select(Dim)) + "]";
        private static string Dim(int d) => d == Sequence ? "T" : d.ToString(CultureInfo.InvariantCulture);
        internal static bool HasSequence(IEnumerable<int> dims) => dims.Contains(Sequence);

        private static bool Is(AttributeData a, string name) => a.AttributeClass?.ToDisplayString() == Ns + name;

        private static bool InheritsFrom(INamedTypeSymbol type, string fullName)
        {
            for (var t = type.BaseType; t is not null; t = t.BaseType) if (t.ToDisplayString() == fullName) return true;
            return false;
        }

        internal static bool IsTensor(ITypeSymbol t) => t.ToDisplayString() == Ns + "Tensor";

        private static int? NamedInt(AttributeData? a, string name) =>
            a?.NamedArguments.Where(n => n.Key == name).Select(n => n.Value.Value).OfType<int>().Select(v => (int?)v).FirstOrDefault();

        private static string? NamedString(AttributeData? a, string name) =>
            a?.NamedArguments.Where(n => n.Key == name).Select(n => n.Value.Value).OfType<string>().FirstOrDefault();

        private static double? NamedDouble(AttributeData? a, string name) =>
            a?.NamedArguments.Where(n => n.Key == name).Select(n => n.Value.Value).Where(v => v is not null).Select(v => (double?)Convert.ToDouble(v, CultureInfo.InvariantCulture)).FirstOrDefault();

        private static LocationInfo? Loc(AttributeData a) => LocationInfo.From(a.ApplicationSyntaxReference?.GetSyntax());

        /// <summary>PyTorch-style attribute names: <c>Fc1</c> → <c>fc1</c>, <c>LayerNorm1</c> → <c>layer_norm1</c>, <c>QKV</c> → <c>qkv</c>.</summary>
        internal static string SnakeCase(string name)
        {
            var sb = new System.Text.StringBuilder();
            for (int i = 0; i < name.Length; i++)
            {
                char c = name[i];
                if (char.IsUpper(c))
                {
                    bool prevLower = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                    bool nextLower = i + 1 < name.Length && char.IsLower(name[i + 1]) && i > 0 && char.IsUpper(name[i - 1]);
                    if (i > 0 && (prevLower || nextLower) && name[i - 1] != '_') sb.Append('_');
                    sb.Append(char.ToLowerInvariant(c));
                }
                else sb.Append(c);
            }
            return sb.ToString();
        }

        /// <summary>An attribute's arguments by constructor parameter name, with the source location of each.</summary>
        internal sealed class AttributeArgs
        {
            private readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);
            private readonly Dictionary<string, LocationInfo?> _locations = new(StringComparer.Ordinal);
            private readonly LocationInfo? _whole;

            public AttributeArgs(AttributeData a, CancellationToken ct)
            {
                var ctor = a.AttributeConstructor;
                var syntax = a.ApplicationSyntaxReference?.GetSyntax(ct) as AttributeSyntax;
                _whole = LocationInfo.From(syntax);
                if (ctor is null) return;
                for (int i = 0; i < ctor.Parameters.Length && i < a.ConstructorArguments.Length; i++)
                    _values[ctor.Parameters[i].Name] = a.ConstructorArguments[i].Value;
                // Settable properties (Conv2d's KernelWidth, Groups) read like constructor arguments, by their names.
                foreach (var named in a.NamedArguments) _values[named.Key] = named.Value.Value;
                if (syntax?.ArgumentList is { } list)
                {
                    int position = 0;
                    foreach (var arg in list.Arguments)
                    {
                        string? name = arg.NameColon?.Name.Identifier.ValueText ?? arg.NameEquals?.Name.Identifier.ValueText;
                        if (name is null && position < ctor.Parameters.Length) name = ctor.Parameters[position].Name;
                        if (arg.NameColon is null && arg.NameEquals is null) position++;
                        if (name is not null) _locations[name] = LocationInfo.From(arg.Expression);
                    }
                }
            }

            /// <summary>An integer argument; a bool one reads as 0 or 1 (<c>bidirectional: true</c>).</summary>
            public int Int(string name, int fallback = 0) => _values.TryGetValue(name, out var v) ? v switch { int i => i, bool b => b ? 1 : 0, _ => fallback } : fallback;
            public bool Bool(string name, bool fallback) => _values.TryGetValue(name, out var v) && v is bool b ? b : fallback;
            public double Double(string name, double fallback) => _values.TryGetValue(name, out var v) && v is not null ? Convert.ToDouble(v, CultureInfo.InvariantCulture) : fallback;
            /// <summary>The argument's expression, or the whole attribute when the argument was not written.</summary>
            public LocationInfo? Location(string name) => _locations.TryGetValue(name, out var l) && l is not null ? l : _whole;
        }
    }
}
