using System.Linq;
using Compiled.Nets.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// The incremental pipeline only: find [Network] classes, parse each into an equatable spec plus diagnostics,
    /// emit source from error-free specs, report diagnostics separately (so moving a diagnostic does not re-emit).
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class NetworkGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking names, for incrementality tests.</summary>
        public const string ParseStep = "Parse", SpecStep = "Spec";

        /// <inheritdoc/>
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var results = context.SyntaxProvider.ForAttributeWithMetadataName(
                    "Compiled.Nets.NetworkAttribute",
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => NetworkParser.Parse((INamedTypeSymbol)ctx.TargetSymbol, (ClassDeclarationSyntax)ctx.TargetNode, ctx.SemanticModel.Compilation, ct))
                .WithTrackingName(ParseStep);

            context.RegisterSourceOutput(results.Select(static (r, _) => r.Diagnostics), static (spc, diagnostics) =>
            {
                foreach (var d in diagnostics) spc.ReportDiagnostic(d.ToDiagnostic());
            });

            var specs = results.Where(static r => r.Spec is not null).Select(static (r, _) => r.Spec!).WithTrackingName(SpecStep);
            context.RegisterSourceOutput(specs, static (spc, spec) =>
                spc.AddSource(NetworkEmitter.HintName(spec), NetworkEmitter.Emit(spec)));
        }
    }
}
