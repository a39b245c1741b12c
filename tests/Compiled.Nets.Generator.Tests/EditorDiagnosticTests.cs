using System.Globalization;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// What a user meets in the editor: only the real error (no CS9248 per layer property, no hidden C# errors), exact
/// messages that say what to change, and a code fix only where its result builds.
/// </summary>
public class EditorDiagnosticTests
{
    private const string Usings = "using Compiled.Nets;\n";

    private static string Message(Diagnostic d) => d.GetMessage(CultureInfo.InvariantCulture);

    [Fact]
    public void ANetworkWithAnError_GetsOnlyThatError_AndItsCallersKeepCompiling()
    {
        // A caller of every member a user reaches for, and one ordinary C# mistake of its own.
        const string caller = """
            using Compiled.Nets;
            public static class Use
            {
                public static float Train(float[] x, int[] y)
                {
                    using var net = new CifarNet(seed: 1);
                    IClassifier c = net;
                    Linear fc = net.Fc1;
                    net.Forward(x, 1, new float[CifarNet.OutputFeatures]);
                    return net.TrainStep(x, y, 1) + c.EvaluateLoss(x, y, 1) + net.Parameters.Count + undefinedName;
                }
            }
            """;
        var (diags, sources, output) = GeneratorHarness.Run(SeedNetworks.CifarSeedBug, caller);
        Assert.Equal("CNET0001", Assert.Single(diags).Id);
        Assert.Equal("CifarNet.g.cs", Assert.Single(sources).Hint);
        // The C# mistake shows (it is not hidden behind the network's error), and nothing else does.
        var errors = output.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 1 && errors[0].Id == "CS0103", string.Join("\n", errors));
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Warning));
    }

    [Fact]
    public void ANetworkWithSeveralInputs_AndAnError_KeepsItsCallersCompiling()
    {
        // The metadata branch is wired for 5 features where the input has 4: one CNET0001, and the caller's calls with
        // one span per input still bind.
        const string net = """
            using Compiled.Nets;
            [Network, Input("image", 1, 8, 8), Input("meta", 4), CrossEntropyLoss]
            public partial class Two
            {
                [Linear(64, 3)] public partial Linear Image { get; }
                [Linear(5, 3)] public partial Linear Meta { get; }
                Tensor Forward(Tensor image, Tensor meta) => image.Flatten().Apply(Image) + meta.Apply(Meta);
            }
            """;
        const string caller = """
            public static class Use
            {
                public static float Train(float[] image, float[] meta, int[] y)
                {
                    using var net = new Two(seed: 1);
                    net.Forward(image, meta, 1, new float[Two.OutputFeatures]);
                    return net.TrainStep(image, meta, y, 1) + net.EvaluateLoss(image, meta, y, 1) + Two.ImageFeatures + Two.MetaFeatures;
                }
            }
            """;
        var (diags, _, output) = GeneratorHarness.Run(net, caller);
        var d = Assert.Single(diags);
        Assert.Equal("CNET0001", d.Id);
        Assert.Contains("the input 'meta'", Message(d));
        Assert.Empty(output.Where(x => x.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void ANetworkWithSeveralOutputs_AndAnError_KeepsItsCallersCompiling()
    {
        // The box head is wired for 8 features where the trunk gives 16: one CNET0001, and the caller's calls with a
        // targets span per loss and an output span per tuple element still bind.
        const string net = """
            using Compiled.Nets;
            [Network, Input(4), CrossEntropyLoss(Output = "digit"), MSELoss(Output = "box", Weight = 0.5f)]
            public partial class Heads
            {
                [Linear(4, 16)] public partial Linear Trunk { get; }
                [Linear(16, 3)] public partial Linear Classes { get; }
                [Linear(8, 4)] public partial Linear Box { get; }
                (Tensor digit, Tensor box) Forward(Tensor x) { var h = x.Apply(Trunk).Relu(); return (h.Apply(Classes), h.Apply(Box)); }
            }
            """;
        const string caller = """
            public static class Use
            {
                public static float Train(float[] x, int[] labels, float[] boxes)
                {
                    using var net = new Heads(seed: 1);
                    net.Forward(x, 1, new float[Heads.DigitFeatures], new float[Heads.BoxFeatures]);
                    var (digit, box) = net.ForwardEager(new Compiled.Nets.Tensor(x, 1, 4));
                    return net.TrainStep(x, labels, boxes, 1, losses: new float[2]) + net.EvaluateLoss(x, labels, boxes, 1, digit: new float[3]);
                }
            }
            """;
        var (diags, _, output) = GeneratorHarness.Run(net, caller);
        Assert.Equal("CNET0001", Assert.Single(diags).Id);
        Assert.Empty(output.Where(x => x.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void ALayerArgumentCSharpCannotBind_IsTheCompilersErrorAlone()
    {
        // PyTorch's kernel_size=(1, 5) written as a tuple: C# rejects the argument; read as zeros it used to add a false
        // "inChannels must be positive, got 0". The non-square form is KernelWidth.
        const string net = """
            using Compiled.Nets;
            [Network, Input(1, 8, 8), CrossEntropyLoss]
            public partial class N
            {
                [Conv2d(1, 4, kernel: (1, 5))] public partial Conv2d Conv { get; }
                [Linear(4 * 8 * 4, 2)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => x.Apply(Conv).Flatten().Apply(Head);
            }
            """;
        var (diags, _, output) = GeneratorHarness.Run(net);
        Assert.Empty(diags);
        Assert.All(output.Where(d => d.Severity == DiagnosticSeverity.Error), d => Assert.StartsWith("CS", d.Id));
        Assert.Contains(output, d => d.Severity == DiagnosticSeverity.Error);
    }

    [Fact]
    public void EveryDescriptor_HasNoHelpLinkThatCannotResolve()
    {
        foreach (var d in DiagnosticDescriptors.All) Assert.True(string.IsNullOrEmpty(d.HelpLinkUri), d.Id);
        foreach (var d in DiagnosticDescriptors.All) Assert.True(File.Exists(Path.Combine(RepoRoot(), "docs", "diagnostics", d.Id + ".md")), d.Id);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return dir!.FullName;
    }

    [Fact]
    public void CNET0005_QuotesOneLine_SoTheReasonSurvivesACommandLineBuild()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    {|CNET0005:while (x is not null)
                        x = x.Apply(Fc);|}
                    return x;
                }
            }
            """);
        string message = Message(diags.Single());
        Assert.DoesNotContain("\n", message);
        Assert.StartsWith("'while (x is not null) …' is not supported in Forward: only local declarations, assignments, loops over block arrays and a final return are understood. Supported: ", message);
    }

    [Fact]
    public void CNET0001_AForgottenFlatten_NamesTheWholeShape_SuggestsFlatten_AndOffersNoFix()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 28, 28), CrossEntropyLoss]
            public partial class LeNet
            {
                [Conv2d(1, 8, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
                [Linear({|CNET0001:8 * 14 * 14|}, 10)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Conv).Relu().MaxPool2d(2).Apply(Fc);
            }
            """);
        var d = diags.Single();
        Assert.Equal("Fc expects 1568 input features (Linear(1568, 10)), but MaxPool2d produces [8, 14, 14] for input 1×28×28: a Linear reads the last dimension (14); add .Flatten() before it to feed 8×14×14 = 1568 features",
            Message(d));
        Assert.False(d.Properties.ContainsKey("Replacement"));
    }

    [Fact]
    public void CNET0018_TwoLosses()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss, {|CNET0018:MSELoss|}]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        Assert.Equal("Network 'N' declares several losses (CrossEntropyLoss, MSELoss); keep exactly one", Message(diags.Single()));
    }

    [Fact]
    public void CNET0012_SaysWhichSideIsWhich()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0012:x.Apply(Fc) + x|};
            }
            """);
        Assert.Equal("Cannot add [3] (left, from x.Apply(Fc)) and [4] (right, from x): the shapes must be equal", Message(diags.Single()));
    }

    [Fact]
    public void CNET0002_APoolWindow_IsDescribedWithoutDilation()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 4, 4)]
            public partial class N
            {
                Tensor Forward(Tensor x) => x.MaxPool2d{|CNET0002:(8)|};
            }
            """);
        Assert.Equal("MaxPool2d with kernel 8, stride 8, padding 0 does not fit its input 1×4×4: the output would be empty", Message(diags.Single()));
        diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 4, 4)]
            public partial class N
            {
                [Conv2d(1, 2, kernel: {|CNET0002:5|})] public partial Conv2d C { get; }
                Tensor Forward(Tensor x) => x.Apply(C);
            }
            """);
        Assert.Equal("C (Conv2d) with kernel 5, stride 1, padding 0, dilation 1 does not fit its input 1×4×4: the output would be empty", Message(diags.Single()));
    }

    [Fact]
    public void CNET0005_AStaticCall_NamesTheOperation()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    var a = x.Apply(Fc);
                    return {|CNET0005:Tensor.Cat(a, x)|};
                }
            }
            """);
        Assert.StartsWith("'Tensor.Cat(a, x)' is not supported in Forward: Tensor.Cat is not an operation the generator compiles (tensor operations are called on a tensor: x.Relu()). Supported: ",
            Message(diags.Single()));
    }
}

/// <summary>A code fix is offered only where the fixed network builds: the walk goes on as if it were applied.</summary>
public class FixOnlyWhereItBuildsTests
{
    private const string Usings = "using Compiled.Nets;\n";

    private static Diagnostic Single(string markup) => GeneratorHarness.AssertDiagnostics(Usings + markup).Single();

    [Fact]
    public void AnAttentionWidth_ThatTheHeadsDoNotDivide_IsNotOffered()
    {
        var d = Single("""
            [Network, Input(Dim.Sequence, 500, MaxSequence = 8)]
            public partial class N
            {
                [SelfAttention({|CNET0001:768|}, heads: 12)] public partial SelfAttention Attn { get; }
                Tensor Forward(Tensor x) => x.Apply(Attn);
            }
            """);
        Assert.False(d.Properties.ContainsKey("Replacement"));
    }

    [Fact]
    public void AFirstFix_ThatLeavesASecondMismatch_IsNotOffered()
    {
        var d = Single("""
            [Network, Input(3, 8, 8)]
            public partial class N
            {
                [Conv2d({|CNET0001:4|}, 8, kernel: 3, padding: 1)] public partial Conv2d C { get; }
                [Linear(100, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(C).Flatten().Apply(Fc);
            }
            """);
        Assert.False(d.Properties.ContainsKey("Replacement"));
    }

    [Fact]
    public void AFix_AfterWhichEverythingChecks_IsOffered()
    {
        var d = Single("""
            [Network, Input(3, 8, 8)]
            public partial class N
            {
                [Conv2d({|CNET0001:4|}, 8, kernel: 3, padding: 1)] public partial Conv2d C { get; }
                [Linear(8 * 8 * 8, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(C).Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("3", d.Properties["Replacement"]);
    }
}
