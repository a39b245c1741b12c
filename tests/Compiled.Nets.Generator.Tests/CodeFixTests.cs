using System.Collections.Immutable;
using Compiled.Nets.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.Text;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// The CNET0001 code fix, applied the way an IDE does: generator diagnostics → CodeFixProvider → the changed document,
/// then the generator runs again on the fixed text and must report nothing.
/// </summary>
public class CodeFixTests
{
    private const string Usings = "using Compiled.Nets;\n";

    private static async Task<string> ApplySingleFix(string source, string expectedTitle)
    {
        var (diags, _, _) = GeneratorHarness.Run(source);
        var diagnostic = Assert.Single(diags, d => d.Id is "CNET0001" or "CNET0003");

        using var workspace = new AdhocWorkspace();
        var project = workspace.AddProject("Test", LanguageNames.CSharp);
        var document = workspace.AddDocument(project.Id, "Test0.cs", SourceText.From(source));
        // The IDE reports the diagnostic against this document's tree: same span, this tree.
        var tree = (await document.GetSyntaxTreeAsync())!;
        var located = Diagnostic.Create(diagnostic.Descriptor, Location.Create(tree, diagnostic.Location.SourceSpan), diagnostic.Properties,
            diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));

        var actions = new List<CodeAction>();
        var context = new CodeFixContext(document, located, (a, _) => actions.Add(a), CancellationToken.None);
        await new SizeMismatchCodeFix().RegisterCodeFixesAsync(context);
        var action = Assert.Single(actions);
        Assert.Equal(expectedTitle, action.Title);
        var operations = await action.GetOperationsAsync(CancellationToken.None);
        var changed = operations.OfType<ApplyChangesOperation>().Single().ChangedSolution.GetDocument(document.Id)!;
        return (await changed.GetTextAsync()).ToString();
    }

    [Fact]
    public async Task TheSeedBug_128x7x7_IsRewrittenTo_128x8x8_AndThenBuilds()
    {
        string source = SeedNetworks.CifarSeedBug;

        string fixedSource = await ApplySingleFix(source, "Change to 128 * 8 * 8");
        Assert.Equal(source.Replace("[Linear(128 * 7 * 7, 512)]", "[Linear(128 * 8 * 8, 512)]"), fixedSource);
        var (diags, sources, output) = GeneratorHarness.Run(fixedSource);
        Assert.Empty(diags);
        Assert.Single(sources);
        Assert.DoesNotContain(output, d => d.Severity == DiagnosticSeverity.Error);
    }

    [Fact]
    public async Task ConvChannelMismatch_IsRewrittenToTheProducedChannels()
    {
        string source = Usings + """
            [Network, Input(1, 8, 8)]
            public partial class N
            {
                [Conv2d(1, 16, kernel: 3)] public partial Conv2d A { get; }
                [Conv2d(inChannels: 32, outChannels: 4, kernel: 3)] public partial Conv2d B { get; }
                Tensor Forward(Tensor x) => x.Apply(A).Relu().Apply(B);
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 16");
        Assert.Contains("[Conv2d(inChannels: 16, outChannels: 4, kernel: 3)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public async Task LinearAfterLinear_GetsThePlainNumber()
    {
        string source = Usings + """
            [Network, Input(20)]
            public partial class N
            {
                [Linear(20, 30)] public partial Linear A { get; }
                [Linear(/* hidden */ 40, 5)] public partial Linear B { get; }
                Tensor Forward(Tensor x) => x.Apply(A).Gelu().Apply(B);
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 30");
        Assert.Contains("[Linear(/* hidden */ 30, 5)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public async Task LayerNormAfterFlatten_KeepsTheProductForm()
    {
        string source = Usings + """
            [Network, Input(4, 4, 4)]
            public partial class N
            {
                [LayerNorm(32)]    public partial LayerNorm Norm { get; }
                [Linear(64, 3)]    public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Flatten().Apply(Norm).Apply(Fc);
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 4 * 4 * 4");
        Assert.Contains("[LayerNorm(4 * 4 * 4)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public async Task FlattenThenActivation_KeepsTheProductForm()
    {
        string source = Usings + """
            [Network, Input(2, 3, 5)]
            public partial class N
            {
                [Dropout(0.1)]         public partial Dropout Drop { get; }
                [Linear(2 * 3 * 4, 7)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Flatten().Relu().Apply(Drop).Apply(Fc);
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 2 * 3 * 5");
        Assert.Contains("[Linear(2 * 3 * 5, 7)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public async Task BatchNormChannelMismatch_IsRewrittenToTheProducedChannels()
    {
        string source = Usings + """
            [Network, Input(3, 8, 8)]
            public partial class N
            {
                [Conv2d(3, 12, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
                [BatchNorm2d(features: 16)]            public partial BatchNorm2d Bn { get; }
                Tensor Forward(Tensor x) => x.Apply(Conv).Apply(Bn).Relu();
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 12");
        Assert.Contains("[BatchNorm2d(features: 12)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public async Task HeadsThatDoNotDivide_AreRewrittenToTheNearestDivisor()
    {
        string source = Usings + """
            [Network, Input(Dim.Sequence, 768)]
            public partial class N
            {
                [SelfAttention(768, heads: 11)] public partial SelfAttention Attention { get; }
                Tensor Forward(Tensor x) => x.Apply(Attention);
            }
            """;
        string fixedSource = await ApplySingleFix(source, "Change to 12");
        Assert.Contains("[SelfAttention(768, heads: 12)]", fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).Generator);
    }

    [Fact]
    public void DiagnosticsOtherThanSizeMismatches_CarryNoReplacement()
    {
        var (diags, _, _) = GeneratorHarness.Run(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc) + x;
            }
            """);
        var d = Assert.Single(diags);
        Assert.Equal("CNET0012", d.Id);
        Assert.Empty(d.Properties);
        Assert.DoesNotContain("CNET0012", new SizeMismatchCodeFix().FixableDiagnosticIds);
    }
}
