using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// Declarations the generator cannot extend and values past what a tensor or a float holds: each is one error at the
/// marked span, the generator never fails (the harness asserts it reports nothing) and the code it writes has no
/// error of its own; a loop that would unroll without end stops at its header.
/// </summary>
public class DeclarationLimitTests
{
    private const string Usings = "using Compiled.Nets;\n";

    /// <summary>The marked diagnostics exactly (returned in source order), and no compiler error inside the generated files.</summary>
    private static IReadOnlyList<Diagnostic> AssertOnly(string markup)
    {
        var (source, expected) = GeneratorHarness.Markup(markup);
        var (_, _, output) = GeneratorHarness.Run(source);
        var diags = GeneratorHarness.AssertDiagnostics(markup);
        Assert.Equal(expected.Count, diags.Length);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error && d.Location.SourceTree?.FilePath.Contains("Compiled.Nets.Generator", StringComparison.Ordinal) == true));
        return diags.OrderBy(d => d.Location.SourceSpan.Start).ToList();
    }

    private static string Message(Diagnostic d) => d.GetMessage(System.Globalization.CultureInfo.InvariantCulture);

    private const string Body = """
            [Linear(4, 2)] public partial Linear Fc { get; }
            Tensor Forward(Tensor x) => x.Apply(Fc);
        """;

    [Fact]
    public void CNET0026_GenericStaticAndRecordClasses()
    {
        Assert.Contains("is generic", Message(AssertOnly(Usings + $$"""
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class G{|CNET0026:<T>|} { {{Body}} }
            """).Single()));
        Assert.Contains("is static", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public static partial class {|CNET0026:S|}
            {
                [Linear(4, 2)] public static partial Linear Fc { get; }
                static Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """).Single()));
        Assert.Contains("is a record", Message(AssertOnly(Usings + $$"""
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial record {|CNET0026:R|} { {{Body}} }
            """).Single()));
        Assert.Contains("nested in the generic type 'A.Outer<T>'", Message(AssertOnly(Usings + $$"""
            namespace A;
            public partial class Outer<T>
            {
                [Network, Input(4), CrossEntropyLoss]
                public partial class {|CNET0026:N|} { {{Body}} }
            }
            """).Single()));
    }

    [Fact]
    public void CNET0026_NamesTheGeneratedCodeWouldWriteAsKeywords()
    {
        Assert.Contains("named with the C# keyword 'event'", Message(AssertOnly(Usings + $$"""
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class {|CNET0026:@event|} { {{Body}} }
            """).Single()));
        Assert.Contains("in the namespace 'class'", Message(AssertOnly(Usings + $$"""
            namespace A.@class;
            [Network, Input(4), CrossEntropyLoss]
            public partial class {|CNET0026:N|} { {{Body}} }
            """).Single()));
        // Several inputs become parameters of the generated methods by name.
        Assert.Contains("'in', a C# keyword", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input("in", 4), Input("meta", 2), CrossEntropyLoss]
            public partial class N
            {
                [Linear(6, 2)] public partial Linear Fc { get; }
                Tensor {|CNET0026:Forward|}(Tensor @in, Tensor meta) => Tensor.Concat(1, @in, meta).Apply(Fc);
            }
            """).Single()));
        Assert.Contains("the C# keyword 'int'", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear {|CNET0013:@int|} { get; }
                Tensor Forward(Tensor x) => x.Apply(@int);
            }
            """).Single()));
    }

    [Fact]
    public void VerbatimIdentifiersThatAreNoKeywords_AndOneKeywordInput_Build()
    {
        var (diags, _, output) = GeneratorHarness.Run(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear @Fc { get; }
                Tensor Forward(Tensor @in) { var @y = @in.Apply(Fc); return y; }
            }
            """);
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void Loops_StopAtTheirHeader_WhenForwardWouldUnrollPastItsLimit()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.Contains("it runs 1,000,000 times", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    {|CNET0014:for (int i = 0; i < 1000000; i++)|} x = x.Relu();
                    return x.Apply(Fc);
                }
            }
            """).Single()));
        // Each loop short, together past the limit: the loop where it is passed says so.
        Assert.Contains("takes Forward past 10,000 operations", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    for (int i = 0; i < 200; i++)
                        {|CNET0014:for (int j = 0; j < 200; j++)|} x = x.Relu();
                    return x.Apply(Fc);
                }
            }
            """).Single()));
        AssertOnly(Usings + """
            namespace A;
            [Network]
            public partial class B
            {
                [Linear(4, 4)] public partial Linear F { get; }
                Tensor Forward(Tensor x) => x.Apply(F);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [SubNetwork(1000000)] public partial B[] {|CNET0013:Blocks|} { get; }
                Tensor Forward(Tensor x) { foreach (var b in Blocks) x = x.Apply(b); return x; }
            }
            """);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(30), $"{started.Elapsed}");
    }

    [Fact]
    public void Sizes_PastWhatATensorHolds_AreErrorsWhereTheyArise()
    {
        Assert.Equal("Input: 100000×100000 would hold more than 2,147,483,647 values per sample, the most one tensor holds", Message(AssertOnly(Usings + """
            namespace A;
            [Network, {|CNET0014:Input(100000, 100000)|}, CrossEntropyLoss]
            public partial class N
            {
                [Linear(100000, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Flatten().Apply(Fc);
            }
            """).Single()));
        // Not a wrapped-around size further on: the op whose output is too large.
        Assert.StartsWith("Upsample: 1×400000×400000 would hold", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(1, 4, 4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(16, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0014:x.Upsample(100000)|}.Flatten().Apply(Fc);
            }
            """).Single()));
        Assert.StartsWith("E: T×4 would hold", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 1000000000), CrossEntropyLoss]
            public partial class N
            {
                [Embedding(10, 4)] public partial Embedding E { get; }
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor ids) => {|CNET0014:ids.Apply(E)|}.MeanOverSequence().Apply(Fc);
            }
            """).Single()));
        Assert.Contains("its weight [2000000000, 2000000000] would hold 4,000,000,000,000,000,000 values", Message(AssertOnly(Usings + """
            namespace A;
            [Network, Input(2000000000), CrossEntropyLoss]
            public partial class N
            {
                [Linear(2000000000, 2000000000)] public partial Linear {|CNET0014:Fc|} { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """).Single()));
    }

    [Fact]
    public void Constants_MustBeFiniteFloats_AndEpsNotNegative()
    {
        var diags = AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N1
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Dropout({|CNET0014:double.NaN|}).Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N2
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.LeakyRelu({|CNET0014:float.NaN|}).Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N3
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => (x / {|CNET0014:1e-40f|}).Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N4
            {
                [LayerNorm(4, eps: {|CNET0014:double.PositiveInfinity|})] public partial LayerNorm Norm { get; }
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Norm).Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N5
            {
                [BatchNorm1d(4, eps: {|CNET0014:-1|})] public partial BatchNorm1d Norm { get; }
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Norm).Apply(Fc);
            }

            [Network, Input(4), {|CNET0014:SmoothL1Loss(Beta = double.PositiveInfinity)|}]
            public partial class N6
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        Assert.Equal("Dropout: probability NaN is outside [0, 1)", Message(diags[0]));
        Assert.Equal("LeakyRelu: NaN is not a finite float", Message(diags[1]));
        Assert.Matches(@"^/: dividing by 9\.9\d*E-41 scales by 1\.0\d*E\+40, which is not a finite float$", Message(diags[2]));
        Assert.Equal("Norm: eps must be a finite float, got Infinity", Message(diags[3]));
        Assert.Equal("Norm: eps must not be negative, got -1", Message(diags[4]));
        Assert.Equal("SmoothL1Loss: Beta must be a positive finite float, got Infinity", Message(diags[5]));
    }

    [Fact]
    public void PoolPadding_IsAtMostHalfTheKernel_AsInPyTorch()
    {
        var diags = AssertOnly(Usings + """
            namespace A;
            [Network, Input(1, 8, 8), CrossEntropyLoss]
            public partial class N1
            {
                [Linear(81, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.MaxPool2d{|CNET0014:(2, 2, 5)|}.Flatten().Apply(Fc);
            }

            [Network, Input(1, 8, 8), CrossEntropyLoss]
            public partial class N2
            {
                [AvgPool2d({|CNET0014:3|}, padding: 2)] public partial AvgPool2d Pool { get; }
                [Linear(36, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Pool).Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("MaxPool2d: padding 5 is more than half the kernel 2; at most 1", Message(diags[0]));
        Assert.Equal("Pool (AvgPool2d): padding 2 is more than half the kernel 3; at most 1", Message(diags[1]));
    }

    [Fact]
    public void StateNames_AreStateDictNames_OnePerParameter()
    {
        var diags = AssertOnly(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N1
            {
                [Linear(4, 2), {|CNET0014:StateName("a\"b")|}] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N2
            {
                [Linear(4, 2), {|CNET0014:StateName("encoder..dense")|}] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }

            [Network, Input(4), CrossEntropyLoss]
            public partial class N3
            {
                [Linear(4, 4), StateName("head")] public partial Linear First { get; }
                [Linear(4, 2), StateName("head")] public partial Linear {|CNET0013:Second|} { get; }
                Tensor Forward(Tensor x) => x.Apply(First).Apply(Second);
            }
            """);
        Assert.StartsWith("StateName: 'a\"b' is not a state-dict name", Message(diags[0]));
        Assert.Equal("Layer property 'Second' would store a parameter as 'head.weight', as 'First' does: give one of them another [StateName]", Message(diags[2]));

        // Distinct names whose fields would meet ("a.b" and "a_b") build, each under its own name.
        var (clean, sources, output) = GeneratorHarness.Run(Usings + """
            namespace A;
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 4), StateName("a.b")] public partial Linear First { get; }
                [Linear(4, 2), StateName("a_b")] public partial Linear Second { get; }
                Tensor Forward(Tensor x) => x.Apply(First).Apply(Second);
            }
            """);
        Assert.Empty(clean);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error));
        string text = sources.Single().Text;
        Assert.Contains("\"a.b.weight\"", text);
        Assert.Contains("\"a_b.weight\"", text);
    }
}
