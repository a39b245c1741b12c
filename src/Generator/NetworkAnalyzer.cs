using System.Collections.Immutable;
using System.Linq;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Reports every CNET diagnostic. IDEs run analyzers live on open documents but do not surface what a source
    /// generator reports while the user types, so the checks run here, through the same parser and shape inference the
    /// generator uses; the generator itself reports nothing (no diagnostic appears twice on the command line).
    /// </summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class NetworkAnalyzer : DiagnosticAnalyzer
    {
        /// <inheritdoc/>
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = DiagnosticDescriptors.All.ToImmutableArray();

        /// <inheritdoc/>
        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterCompilationStartAction(static start =>
            {
                var network = start.Compilation.GetTypeByMetadataName("Compiled.Nets.NetworkAttribute");
                if (network is null) return;
                start.RegisterSymbolAction(ctx => Analyze(ctx, network), SymbolKind.NamedType);
            });
        }

        private static void Analyze(SymbolAnalysisContext ctx, INamedTypeSymbol network)
        {
            var type = (INamedTypeSymbol)ctx.Symbol;
            var attribute = type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, network));
            // The declaration that carries [Network], as the generator's ForAttributeWithMetadataName sees it; a record
            // class is not one it extends, so it is told here (C# itself refuses the attribute on structs).
            var declaration = attribute?.ApplicationSyntaxReference?.GetSyntax(ctx.CancellationToken).FirstAncestorOrSelf<TypeDeclarationSyntax>();
            if (declaration is RecordDeclarationSyntax { ClassOrStructKeyword.RawKind: not (int)Microsoft.CodeAnalysis.CSharp.SyntaxKind.StructKeyword } record
                && NetworkParser.DeclarationProblem(type, record) is var (where, why))
                ctx.ReportDiagnostic(Helpers.DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedDeclaration, where, type.Name, why).ToDiagnostic());
            if (declaration is not ClassDeclarationSyntax syntax) return;
            var result = NetworkParser.Parse(type, syntax, ctx.Compilation, ctx.CancellationToken);
            foreach (var d in result.Diagnostics) ctx.ReportDiagnostic(d.ToDiagnostic());
            if (result.Spec is { IsBlock: false } spec && MemoryBudget.Check(type, spec) is { } over) ctx.ReportDiagnostic(over.ToDiagnostic());
            if (result.Spec is { IsBlock: false } checkedSpec)
                foreach (var d in WeightsContract.Check(type, checkedSpec, ctx.Options.AdditionalFiles.Select(f => f.Path), ctx.CancellationToken))
                    ctx.ReportDiagnostic(d.ToDiagnostic());
        }
    }
}
