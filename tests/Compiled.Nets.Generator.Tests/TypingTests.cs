using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// The code in an editor is mostly unfinished: every keystroke runs the generator and the analyzer on a half-typed
/// declaration. Neither may throw, and a generated file may not add an error of its own — the user's code is where
/// errors are, and the editor's error list should show only those.
/// </summary>
public class TypingTests
{
    /// <summary>Blocks with and without arguments, an array of blocks, several inputs and a sequence network.</summary>
    private const string Source = """
        using Compiled.Nets;

        namespace Shop.Models;

        [Network]
        public partial class Residual
        {
            private const int Width = BlockArg.A;
            [Conv2d(Width, Width, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv { get; }
            [BatchNorm2d(Width)] public partial BatchNorm2d Norm { get; }
            Tensor Forward(Tensor x) => (x.Apply(Conv).Apply(Norm) + x).Relu();
        }

        [Network, Input("image", 2, 8, 8), Input("meta", 3), CrossEntropyLoss]
        public partial class Fusion
        {
            [Conv2d(2, 4, kernel: 3, padding: 1)] public partial Conv2d Stem { get; }
            [SubNetwork(2, Args = new[] { 4 })] public partial Residual[] Blocks { get; }
            [Linear(4 * 4 * 4 + 3, 5)] public partial Linear Head { get; }
            Tensor Forward(Tensor image, Tensor meta)
            {
                var f = image.Apply(Stem).Relu().Apply(Blocks).MaxPool2d(2).Flatten();
                return Tensor.Concat(1, f, meta).Apply(Head);
            }
        }

        [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
        public partial class Tagger
        {
            [Embedding(30, 8)] public partial Embedding Words { get; }
            [SelfAttention(8, heads: 2)] public partial SelfAttention Attention { get; }
            [Linear(8, 2)] public partial Linear Classifier { get; }
            Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Attention).SelectToken(0).Apply(Classifier);
        }
        """;

    [Fact]
    public void The_source_builds_as_it_stands()
    {
        var (diags, sources, output) = GeneratorHarness.Run(Source);
        Assert.Empty(diags);
        Assert.Equal(3, sources.Length);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    /// <summary>
    /// Typing the source token by token, and the source with one token deleted, through one incremental driver as an
    /// editor runs it: no exception from the generator or the analyzer, and no error in a generated file of a kind the
    /// user's code does not already have (where the user's code has CS0246 for a type still unwritten, its generated
    /// implementation naming that type has it too). Every seventh state of each kind in CI (a tenth of a second each);
    /// <c>COMPILED_NETS_TYPING_STRIDE=1</c> runs all of them, and <c>COMPILED_NETS_TYPING_FILE</c> types another source.
    /// </summary>
    [Fact]
    public async Task Typing_or_deleting_any_token_never_breaks_the_generator_or_a_generated_file()
    {
        string? file = Environment.GetEnvironmentVariable("COMPILED_NETS_TYPING_FILE");
        string source = file is { Length: > 0 } ? File.ReadAllText(file) : Source;
        var tokens = CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions).GetRoot().DescendantTokens().ToList();
        int stride = int.TryParse(Environment.GetEnvironmentVariable("COMPILED_NETS_TYPING_STRIDE"), out int s) && s > 0 ? s : 7;
        var states = new List<(string Text, string What)>();
        for (int t = 0; t < tokens.Count; t += stride) states.Add((source[..tokens[t].Span.End], $"typed through '{tokens[t].Text}' on line {Line(tokens[t])}"));
        for (int t = stride / 2; t < tokens.Count; t += stride) states.Add((source.Remove(tokens[t].SpanStart, tokens[t].Span.Length), $"'{tokens[t].Text}' deleted on line {Line(tokens[t])}"));

        GeneratorDriver driver = GeneratorHarness.Driver();
        var problems = new List<string>();
        foreach (var (text, what) in states)
        {
            var found = new List<string>();
            driver = driver.RunGeneratorsAndUpdateCompilation(GeneratorHarness.Compile(text), out var output, out var generatorDiagnostics);
            found.AddRange(generatorDiagnostics.Select(d => "generator: " + d));
            var analyzers = output.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new NetworkAnalyzer()),
                new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
                    (e, _, _) => found.Add("analyzer threw: " + e.Message), concurrentAnalysis: false, logAnalyzerExecutionTime: false));
            found.AddRange((await analyzers.GetAnalyzerDiagnosticsAsync()).Where(d => d.Id.StartsWith("AD", StringComparison.Ordinal)).Select(d => "analyzer: " + d));

            var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
            var users = errors.Where(d => d.Location.SourceTree == output.SyntaxTrees.First()).Select(d => d.Id).ToHashSet();
            found.AddRange(errors.Where(d => Generated(d) && !users.Contains(d.Id)).Select(d => "generated file: " + d));
            if (found.Count > 0) problems.Add($"{what}:\n  " + string.Join("\n  ", found.Distinct().Take(3)));
        }
        Assert.True(file is { Length: > 0 } || states.Count * stride > 700, $"{states.Count} states");
        Assert.True(problems.Count == 0, $"{problems.Count} of {states.Count} states:\n" + string.Join("\n", problems.Take(10)));
    }

    private static int Line(SyntaxToken t) => t.GetLocation().GetLineSpan().StartLinePosition.Line + 1;

    private static bool Generated(Diagnostic d) => d.Location.SourceTree?.FilePath.EndsWith(".g.cs", StringComparison.Ordinal) == true;

    [Theory]
    [InlineData("{ get; set; }")]
    [InlineData("{ get; init; }")]
    [InlineData("{ get; private set; }")]
    public void A_layer_property_with_a_setter_is_CNET0013_alone(string accessors)
    {
        // The generator implements a getter only; the set it would not implement was an error in the generated file.
        var (diags, _, output) = GeneratorHarness.Run(Source.Replace("public partial Linear Classifier { get; }", "public partial Linear Classifier " + accessors));
        var d = Assert.Single(diags);
        Assert.Equal("CNET0013", d.Id);
        Assert.Contains("'Classifier'", d.GetMessage());
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void A_Forward_typed_up_to_its_input_is_quiet_and_the_generator_does_not_fail()
    {
        // `=> x` before `.Apply(…)`: the generator threw here (a network of no op); now only C#'s syntax error shows.
        var (diags, _, output) = GeneratorHarness.Run("""
            using Compiled.Nets;
            namespace Shop;
            [Network, Input(12), NLLLoss]
            public partial class N
            {
                [Linear(12, 9)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x
            """);
        Assert.Empty(diags);
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error && Generated(x)));
        Assert.Contains(output, x => x.Id == "CS1002"); // ; expected
    }

    [Fact]
    public void A_block_with_an_error_leaves_the_network_applying_it_with_arguments_compiling()
    {
        // The block's skeleton has the constructor with arguments that the applying network's code calls.
        var (diags, _, output) = GeneratorHarness.Run(Source.Replace("public partial BatchNorm2d Norm", "public BatchNorm2d Norm"));
        Assert.Equal("CNET0013", Assert.Single(diags).Id);
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void A_block_that_is_not_partial_is_CNET0008_and_no_generated_file_has_an_error()
    {
        // Its own partial properties are C#'s errors; the network applying it gets its skeleton, not code calling
        // members the block never got.
        var (diags, sources, output) = GeneratorHarness.Run(Source.Replace("public partial class Residual", "public class Residual"));
        Assert.Equal("CNET0008", Assert.Single(diags).Id);
        Assert.Contains(sources, s => s.Hint == "Shop.Models.Fusion.g.cs" && s.Text.Contains("throw Invalid()", StringComparison.Ordinal));
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error && Generated(x)));
        Assert.Contains(output, x => x.Id == "CS0751"); // a partial member outside a partial type: the user's code says so
    }

    [Theory]
    [InlineData("namespace Shop.Models;", "namespace Shop.;", 0)]
    [InlineData("public partial class Tagger", "public partial class", 2)]
    public void A_name_still_being_typed_gets_no_generated_file(string complete, string typing, int files)
    {
        // Code written with an empty name ("Shop..Fusion", "partial class  {") was a page of errors in a generated file.
        var (_, sources, output) = GeneratorHarness.Run(Source.Replace(complete, typing));
        Assert.Equal(files, sources.Length);
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error && Generated(x)));
        Assert.Contains(output, x => x.Severity == DiagnosticSeverity.Error); // the syntax error itself
    }

    [Fact]
    public void Forward_typed_as_far_as_its_name_leaves_no_error_in_a_generated_file()
    {
        // `Tensor Forward` before its parenthesis is a field: the skeleton's Forward method would clash with it.
        string source = Source[..(Source.IndexOf("Tensor Forward(Tensor ids)", StringComparison.Ordinal) + "Tensor Forward".Length)];
        var (_, sources, output) = GeneratorHarness.Run(source);
        Assert.Equal(3, sources.Length);
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error && Generated(x)));
    }

    /// <summary>A Forward being written: C#'s syntax error (or CS0161 for a body without a return yet) is the only one;
    /// a CNET0005 quoting the unfinished expression beside it, with the list of every supported call, was noise.</summary>
    [Theory]
    [InlineData("Tensor Forward(Tensor x)")]
    [InlineData("Tensor Forward(Tensor x) =>")]
    [InlineData("Tensor Forward(Tensor x) => x.Apply(Fc).")]
    [InlineData("Tensor Forward(Tensor x) => x.Apply(")]
    [InlineData("Tensor Forward(Tensor x) { var h = x.Apply(Fc); }")]
    [InlineData("Tensor Forward(Tensor x) { var h = x.Apply(Fc); return h. }")]
    [InlineData("Tensor Forward(Tensor x) { var h = x.Apply(Fc).Relu(; return h; }")]
    public void A_Forward_being_written_shows_only_the_compilers_error(string forward)
    {
        var (diags, _, output) = GeneratorHarness.Run($$"""
            using Compiled.Nets;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                {{forward}}
            }
            """);
        Assert.Empty(diags);
        Assert.NotEmpty(output.Where(x => x.Severity == DiagnosticSeverity.Error));
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error && Generated(x)));
    }
}
