using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// The incremental pipeline only: find [Network] classes, parse each into an equatable spec, emit source from
    /// error-free specs and a skeleton of the members for the others. Diagnostics are the <see cref="NetworkAnalyzer"/>'s:
    /// IDEs show an analyzer's while the user types, a generator's only on build.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class NetworkGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking names, for incrementality tests.</summary>
        public const string ParseStep = "Parse", SpecStep = "Spec", GpuStep = "ReferencesGpu";

        /// <inheritdoc/>
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var models = context.SyntaxProvider.ForAttributeWithMetadataName(
                    "Compiled.Nets.NetworkAttribute",
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => NetworkParser.Parse((INamedTypeSymbol)ctx.TargetSymbol, (ClassDeclarationSyntax)ctx.TargetNode, ctx.SemanticModel.Compilation, ct))
                .WithTrackingName(ParseStep)
                // Diagnostics (and their locations) stay behind: moving a line does not re-emit.
                .Select(static (r, _) => r.ToEmitModel())
                .WithTrackingName(SpecStep);

            context.RegisterSourceOutput(models, static (spc, model) =>
            {
                if (model.Spec is { } spec) spc.AddSource(CpuEmitter.HintName(spec), CpuEmitter.Emit(spec));
                else if (model.Skeleton is { } skeleton) spc.AddSource(SkeletonEmitter.HintName(skeleton), SkeletonEmitter.Emit(skeleton));
            });

            // The GPU twins, only where the compilation references Compiled.Nets.Gpu (a CPU-only build carries no ILGPU).
            var hasGpu = context.CompilationProvider
                .Select(static (c, _) => c.GetTypeByMetadataName("Compiled.Nets.Gpu.DeviceNetwork") is not null)
                .WithTrackingName(GpuStep);
            context.RegisterSourceOutput(models.Combine(hasGpu), static (spc, pair) =>
            {
                if (pair.Right && pair.Left.Spec is { IsBlock: false } spec) spc.AddSource(GpuEmitter.HintName(spec), GpuEmitter.Emit(spec));
            });
            // LoadWeights for a [Weights] file, resolved among the AdditionalFiles by path (their contents are the analyzer's
            // to check; this output only needs where the file is).
            var additionalPaths = context.AdditionalTextsProvider.Select(static (t, _) => t.Path).Collect()
                .Select(static (paths, _) => paths.ToEquatableArray());
            context.RegisterSourceOutput(models.Combine(additionalPaths), static (spc, pair) =>
            {
                if (pair.Left.Spec is { IsBlock: false, WeightsPath: { } declared } spec)
                    spc.AddSource(CpuEmitter.HintName(spec).Replace(".g.cs", ".Weights.g.cs"), CpuEmitter.EmitWeights(spec, WeightsContract.Resolve(declared, pair.Right) ?? declared));
            });
            context.RegisterSourceOutput(hasGpu, static (spc, gpu) =>
            {
                if (gpu) spc.AddSource("Compiled.Nets.Gpu.AssemblyInfo.g.cs", GpuEmitter.AssemblyInfo());
            });
        }
    }
}
