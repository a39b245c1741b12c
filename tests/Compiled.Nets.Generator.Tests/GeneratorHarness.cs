using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Compiled.Nets.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Compiled.Nets.Generator.Tests;

/// <summary>Compiles test sources against the running runtime's assemblies and runs the generator on them.</summary>
internal static class GeneratorHarness
{
    private static readonly Lazy<MetadataReference[]> s_references = new(() =>
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var refs = tpa.Where(p => Path.GetFileName(p) is var n && (n.StartsWith("System.", StringComparison.Ordinal) || n is "mscorlib.dll" or "netstandard.dll"))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
        refs.Add(MetadataReference.CreateFromFile(typeof(NetworkAttribute).Assembly.Location));
        refs.Add(MetadataReference.CreateFromFile(typeof(ParameterStore).Assembly.Location));
        return refs.ToArray();
    });

    /// <summary>The same, and the GPU package with ILGPU: a consumer of Compiled.Nets.Gpu.</summary>
    private static readonly Lazy<MetadataReference[]> s_gpuReferences = new(() => s_references.Value
        .Append(MetadataReference.CreateFromFile(typeof(Compiled.Nets.Gpu.DeviceNetwork).Assembly.Location))
        .Append(MetadataReference.CreateFromFile(typeof(ILGPU.Context).Assembly.Location))
        .ToArray());

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Preview);

    public static CSharpCompilation Compile(params string[] sources) => Compile(false, sources);

    public static CSharpCompilation Compile(bool gpu, params string[] sources) =>
        CSharpCompilation.Create("TestAssembly",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Test{i}.cs")),
            gpu ? s_gpuReferences.Value : s_references.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

    public static GeneratorDriver Driver(bool track = false) =>
        CSharpGeneratorDriver.Create(new[] { new NetworkGenerator().AsSourceGenerator() }, parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));

    /// <summary>
    /// Runs the generator, then the analyzer on the output compilation (as a build does): the analyzer's CNET
    /// diagnostics, the generated sources, and the output compilation's own diagnostics. The generator itself must
    /// report nothing, so no diagnostic is doubled.
    /// </summary>
    public static (ImmutableArray<Diagnostic> Generator, ImmutableArray<(string Hint, string Text)> Sources, ImmutableArray<Diagnostic> Output) Run(params string[] sources) =>
        Run(false, sources);

    /// <summary>As <see cref="Run(string[])"/>, in a compilation that references Compiled.Nets.Gpu when <paramref name="gpu"/>.</summary>
    public static (ImmutableArray<Diagnostic> Generator, ImmutableArray<(string Hint, string Text)> Sources, ImmutableArray<Diagnostic> Output) Run(bool gpu, params string[] sources)
    {
        var compilation = Compile(gpu, sources);
        var driver = Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        Assert.Empty(generatorDiagnostics);
        var result = driver.GetRunResult();
        var generated = result.Results.SelectMany(r => r.GeneratedSources).Select(g => (g.HintName, g.SourceText.ToString())).ToImmutableArray();
        return (Analyze(output), generated, output.GetDiagnostics());
    }

    /// <summary>The <see cref="NetworkAnalyzer"/>'s diagnostics on a compilation.</summary>
    public static ImmutableArray<Diagnostic> Analyze(Compilation compilation) => Analyze(compilation, ImmutableArray<AdditionalText>.Empty);

    private static ImmutableArray<Diagnostic> Analyze(Compilation compilation, ImmutableArray<AdditionalText> files) =>
        compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new NetworkAnalyzer()), new AnalyzerOptions(files))
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();

    /// <summary>An AdditionalFiles item as a build passes it: its path (the weights check reads the file itself).</summary>
    private sealed class FileItem(string path) : AdditionalText
    {
        public override string Path => path;
        public override Microsoft.CodeAnalysis.Text.SourceText? GetText(CancellationToken cancellationToken = default) => null;
    }

    /// <summary>As <see cref="Run(string[])"/>, with <paramref name="additionalFiles"/> as the project's AdditionalFiles items.</summary>
    public static (ImmutableArray<Diagnostic> Generator, ImmutableArray<(string Hint, string Text)> Sources, ImmutableArray<Diagnostic> Output) RunWithFiles(string[] additionalFiles, params string[] sources)
    {
        var files = additionalFiles.Select(f => (AdditionalText)new FileItem(f)).ToImmutableArray();
        var compilation = Compile(false, sources);
        var driver = ((GeneratorDriver)CSharpGeneratorDriver.Create(new[] { new NetworkGenerator().AsSourceGenerator() }, files, ParseOptions))
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        Assert.Empty(generatorDiagnostics);
        var generated = driver.GetRunResult().Results.SelectMany(r => r.GeneratedSources).Select(g => (g.HintName, g.SourceText.ToString())).ToImmutableArray();
        return (Analyze(output, files), generated, output.GetDiagnostics());
    }

    /// <summary>Asserts the marked diagnostics, with <paramref name="additionalFiles"/> as AdditionalFiles items.</summary>
    public static ImmutableArray<Diagnostic> AssertDiagnosticsWithFiles(string[] additionalFiles, string markup)
    {
        var (source, expected) = Markup(markup);
        var (diags, _, output) = RunWithFiles(additionalFiles, source);
        AssertMarked(expected, diags);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error));
        return diags;
    }

    /// <summary>
    /// Markup: <c>{|CNET0001:text|}</c> marks where a diagnostic must be reported. Returns the clean source and the
    /// expected (id, line, column) list (1-based, as an IDE shows them).
    /// </summary>
    public static (string Source, List<(string Id, int Line, int Column, int Length)> Expected) Markup(string markup)
    {
        var expected = new List<(string, int, int, int)>();
        var sb = new System.Text.StringBuilder();
        int i = 0;
        var re = new Regex(@"\{\|(CNET\d{4}):");
        while (i < markup.Length)
        {
            var m = re.Match(markup, i);
            if (!m.Success) { sb.Append(markup, i, markup.Length - i); break; }
            sb.Append(markup, i, m.Index - i);
            int end = markup.IndexOf("|}", m.Index, StringComparison.Ordinal);
            string inner = markup.Substring(m.Index + m.Length, end - m.Index - m.Length);
            string before = sb.ToString();
            int line = before.Count(c => c == '\n') + 1;
            int col = before.Length - (before.LastIndexOf('\n') + 1) + 1;
            expected.Add((m.Groups[1].Value, line, col, inner.Length));
            sb.Append(inner);
            i = end + 2;
        }
        return (sb.ToString(), expected);
    }

    /// <summary>Asserts the generator reports exactly the marked diagnostics, at the marked spans.</summary>
    public static ImmutableArray<Diagnostic> AssertDiagnostics(string markup, params string[] otherSources)
    {
        var (source, expected) = Markup(markup);
        var (diags, _, _) = Run(new[] { source }.Concat(otherSources).ToArray());
        AssertMarked(expected, diags);
        return diags;
    }

    /// <summary>The reported diagnostics, in source order, are exactly the marked ones (id, line, column, length).</summary>
    private static void AssertMarked(List<(string Id, int Line, int Column, int Length)> expected, ImmutableArray<Diagnostic> diags)
    {
        var actual = diags.Select(d =>
        {
            var span = d.Location.GetLineSpan();
            return (d.Id, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, d.Location.SourceSpan.Length);
        }).OrderBy(x => x.Item2).ThenBy(x => x.Item3).ToList();
        Assert.True(expected.SequenceEqual(actual),
            $"Expected: {string.Join("; ", expected)}\nActual: {string.Join("; ", actual)}\nMessages: {string.Join("\n", diags.Select(d => d.ToString()))}");
    }
}
