namespace Compiled.Nets.Generator.Tests;

/// <summary>One test per diagnostic: ID, line, column and span asserted through markup; messages name both shapes.</summary>
public class DiagnosticTests
{
    private const string Usings = "using Compiled.Nets;\n";
    private static string Message(Microsoft.CodeAnalysis.Diagnostic d) => d.GetMessage(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void CNET0001_TheSeedBug_Cifar10WiredWith128x7x7()
    {
        var diags = GeneratorHarness.AssertDiagnostics(SeedNetworks.CifarSeedBugMarkup);
        Assert.Equal("Fc1 expects 6272 input features (Linear(6272, 512)), but Flatten produces 8192 (128×8×8) for input 3×32×32",
            diags.Single().GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void TheSameNet_On28x28_BuildsWithoutAnyDiagnostic_AndTheOutputCompiles()
    {
        var (gen, sources, output) = GeneratorHarness.Run(Usings + """
            namespace Samples;
            [Network, Input(1, 28, 28), CrossEntropyLoss]
            public partial class FashionNet
            {
                [Conv2d(1, 64, kernel: 3, padding: 1)]   public partial Conv2d Conv1 { get; }
                [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
                [Linear(128 * 7 * 7, 512)]               public partial Linear Fc1 { get; }
                [Linear(512, 10)]                        public partial Linear Fc2 { get; }

                Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                             .Apply(Conv2).MaxPool2d(2).Relu()
                                             .Flatten().Apply(Fc1).Relu().Apply(Fc2);
            }
            """);
        Assert.Empty(gen);
        Assert.Equal("Samples.FashionNet.g.cs", Assert.Single(sources).Hint);
        Assert.Empty(output.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
    }

    [Fact]
    public void CNET0001_ConvInChannels()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(3, 8, 8)]
            public partial class N
            {
                [Conv2d({|CNET0001:4|}, 8, kernel: 3)] public partial Conv2d C { get; }
                Tensor Forward(Tensor x) => x.Apply(C);
            }
            """);
        Assert.Contains("4 input channels", diags[0].GetMessage());
        Assert.Contains("3 channels (3×8×8)", diags[0].GetMessage());
    }

    [Fact]
    public void CNET0002_WindowLargerThanInput()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 4, 4)]
            public partial class N
            {
                [Conv2d(1, 2, kernel: {|CNET0002:5|})] public partial Conv2d C { get; }
                Tensor Forward(Tensor x) => x.Apply(C);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 4, 4)]
            public partial class N
            {
                Tensor Forward(Tensor x) => x.MaxPool2d{|CNET0002:(8)|};
            }
            """);
    }

    [Fact]
    public void CNET0005_UnsupportedConstruct_SaysWhatIsSupported()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0005:x.Apply(Fc).Sqrt()|};
            }
            """);
        Assert.Contains("'Sqrt' is not a known tensor operation", diags[0].GetMessage());
        Assert.Contains("Supported:", diags[0].GetMessage());
    }

    [Fact]
    public void CNET0005_AParameterisedActivation_TakesAtMostOneConstant()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0005:x.Apply(Fc).LeakyRelu(0.1, 0.2)|};
            }
            """);
        Assert.Contains("LeakyRelu takes at most one constant negativeSlope", diags[0].GetMessage());
        Assert.Contains("LeakyRelu([negativeSlope])", diags[0].GetMessage());
        // And a size given to SiLU is ignored, as for the other activations.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class M
            {
                [SiLU({|CNET0007:4|})] public partial SiLU Act { get; }
                [ELU(alpha: 0.5)] public partial ELU Elu { get; }
                Tensor Forward(Tensor x) => x.Apply(Act).Apply(Elu).Elu(2).Hardswish();
            }
            """);
    }

    [Fact]
    public void CNET0019_ShapesThatDoNotBroadcast_NameTheDimension()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(8, 5, 5)]
            public partial class N
            {
                [Conv2d(8, 4, kernel: 1)] public partial Conv2d Gate { get; }
                Tensor Forward(Tensor x)
                {
                    var s = x.AdaptiveAvgPool2d(1).Apply(Gate).Sigmoid();
                    return {|CNET0019:x * s|};
                }
            }
            """);
        Assert.Equal("Cannot multiply [8, 5, 5] (left, from x) and [4, 1, 1] (right, from s): dimension 0 is 8 on the left and 4 on the right; aligned from the right, each dimension must be equal or 1 on one side",
            diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        // Fewer dimensions on one side align from the right: [8] against [8, 5, 5] meets the 5 of the last dimension.
        var aligned = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(8, 5, 5)]
            public partial class M
            {
                Tensor Forward(Tensor x) => {|CNET0019:x - x.AdaptiveAvgPool2d(1).Flatten()|};
            }
            """);
        Assert.Contains("dimension 2 is 5 on the left and 8 on the right", aligned[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CNET0014_ALossParameterOutOfRange()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:SmoothL1Loss(Beta = 0)|}]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        Assert.Contains("Beta must be a positive finite float, got 0", diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:CrossEntropyLoss(LabelSmoothing = 1.5f)|}]
            public partial class M
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
    }

    [Fact]
    public void CNET0014_AForwardThatReturnsItsInputAsItCameIn()
    {
        // Nothing to compute, train or take a gradient through; the generator threw on it (an empty summary), or wrote
        // code that did not compile (a gradient of the input nobody holds). Several outputs say the same already.
        string markup = Usings + """
            [Network, Input(12), NLLLoss]
            public partial class N
            {
                [Linear(12, 9)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0014:x|};
            }
            """;
        var diags = GeneratorHarness.AssertDiagnostics(markup);
        Assert.Equal("Forward: Forward returns its input as it came in; return a value the network computes", diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Empty(GeneratorHarness.Run(GeneratorHarness.Markup(markup).Source).Output.Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(3, 4)]
            public partial class M
            {
                Tensor Forward(Tensor x) { return {|CNET0014:x.Flatten()|}; }
            }
            """);
    }

    [Fact]
    public void CNET0020_ConcatenatedShapesMustAgreeElsewhere_AndTheBatchCannotBeConcatenated()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(3, 8, 8)]
            public partial class N
            {
                Tensor Forward(Tensor x) => Tensor.Concat(1, x, {|CNET0020:x.MaxPool2d(2)|});
            }
            """);
        Assert.Equal("Cannot concatenate [3, 8, 8] (from x) and [3, 4, 4] (from x.MaxPool2d(2)) along dimension 1: dimension 2 is 8 and 4; all but the concatenated dimension must be equal",
            diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(3, 8, 8)]
            public partial class M
            {
                Tensor Forward(Tensor x) => Tensor.Concat({|CNET0014:0|}, x, x);
            }
            """);
    }

    [Fact]
    public void CNET0006_UnusedLayer_And_CNET0007_IgnoredSize()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                [Linear(2, 2)] public partial Linear {|CNET0006:Spare|} { get; }
                [ReLU({|CNET0007:512|})] public partial ReLU Act { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc).Apply(Act);
            }
            """);
    }

    [Fact]
    public void CNET0008_NotPartial()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public class {|CNET0008:N|}
            {
                Tensor Forward(Tensor x) => x.Relu();
            }
            """);
    }

    [Fact]
    public void CNET0009_SoftmaxBeforeCrossEntropy()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0009:x.Apply(Fc).Softmax()|};
            }
            """);
    }

    [Fact]
    public void CNET0010_MissingForward()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class {|CNET0010:N|}
            {
                Tensor Run(Tensor x) => x;
            }
            """);
    }

    [Fact]
    public void CNET0011_RankMismatch()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(10)]
            public partial class N
            {
                [Conv2d(1, 2, kernel: 3)] public partial Conv2d C { get; }
                Tensor Forward(Tensor x) => {|CNET0011:x.Apply(C)|};
            }
            """);
        Assert.Contains("[C, H, W]", diags[0].GetMessage());
        Assert.Contains("[10]", diags[0].GetMessage());
    }

    [Fact]
    public void CNET0012_ResidualAddOfDifferentShapes()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0012:x.Apply(Fc) + x|};
            }
            """);
    }

    [Fact]
    public void CNET0013_LayerPropertyProblems()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 3)] public partial Conv2d {|CNET0013:Fc|} { get; }
                Tensor Forward(Tensor x) => x;
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, 3)] public Linear {|CNET0013:Fc|} => null!;
                Tensor Forward(Tensor x) => x;
            }
            """);
    }

    [Fact]
    public void CNET0014_InvalidArguments()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Linear(4, {|CNET0014:0|})] public partial Linear Fc { get; }
                [Dropout({|CNET0014:1.5|})] public partial Dropout D { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc).Apply(D);
            }
            """);
    }

    [Fact]
    public void CNET0003_HeadsDoNotDivideTheHiddenSize_OnTheHeadsArgument()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 12)]
            public partial class N
            {
                [SelfAttention(12, heads: {|CNET0003:5|})] public partial SelfAttention Attn { get; }
                Tensor Forward(Tensor x) => x.Apply(Attn);
            }
            """);
    }

    [Fact]
    public void SelfAttention_SizeAndRankMismatches_AreReportedWhereTheyAre()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 12)]
            public partial class N
            {
                [Linear(12, 16)] public partial Linear Up { get; }
                [SelfAttention({|CNET0001:12|}, heads: 4)] public partial SelfAttention Attn { get; }
                Tensor Forward(Tensor x) => x.Apply(Up).Apply(Attn);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(12)]
            public partial class M
            {
                [SelfAttention(12, heads: 4)] public partial SelfAttention Attn { get; }
                Tensor Forward(Tensor x) => {|CNET0011:x.Apply(Attn)|};
            }
            """);
    }

    [Fact]
    public void RecurrentLayers_SizeRankAndArgumentErrors_AreReportedWhereTheyAre()
    {
        // A bidirectional layer doubles the width the next layer must expect; the mismatch is on its inputSize.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 12)]
            public partial class N
            {
                [LSTM(12, 16, bidirectional: true)] public partial LSTM Lower { get; }
                [GRU({|CNET0001:16|}, 8)] public partial GRU Upper { get; }
                Tensor Forward(Tensor x) => x.Apply(Lower).Apply(Upper);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(3, 8, 8)]
            public partial class M
            {
                [LSTM(8, 4)] public partial LSTM Rnn { get; }
                Tensor Forward(Tensor x) => {|CNET0011:x.Apply(Rnn)|};
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(5, 8)]
            public partial class K
            {
                [GRU(8, 4, numLayers: {|CNET0014:0|})] public partial GRU Rnn { get; }
                Tensor Forward(Tensor x) => x.Apply(Rnn);
            }
            """);
    }

    [Fact]
    public void ArithmeticWithConstants_DivisionByZeroAndByATensor_AreReported()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => (x / {|CNET0014:0f|}).Apply(Head);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class M
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => ({|CNET0005:x / x|}).Apply(Head);
            }
            """);
    }

    [Fact]
    public void ShapeMethodsAndMatMul_AreCheckedWhereTheyAreCalled()
    {
        // The inner dimensions of a product (CNET0004 on the call), sizes that do not split a dimension, and a
        // permutation that would move T.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, 8), CrossEntropyLoss]
            public partial class N
            {
                [Linear(8, 5)] public partial Linear K { get; }
                [Linear(16, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => {|CNET0004:x.MatMul(x.Apply(K))|}.Flatten().Apply(Head);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, 8), CrossEntropyLoss]
            public partial class M
            {
                [Linear(32, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => x.Unflatten{|CNET0014:(2, 3, 3)|}.Flatten().Apply(Head);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 8, MaxSequence = 6), CrossEntropyLoss]
            public partial class K
            {
                [Linear(8, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => {|CNET0017:x.Permute(0, 2, 1)|}.Permute(0, 2, 1).MeanOverSequence().Apply(Head);
            }
            """);
    }

    [Fact]
    public void LoopsOverBlockArrays_AreUnrolled_AndBadIndicesOrLoopsReported()
    {
        const string block = Usings + """
            [Network, Input(4)]
            public partial class B
            {
                [Linear(4, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc).Relu();
            }
            """;
        // An index past the array, at the index.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class N
            {
                [SubNetwork(2)] public partial B[] Blocks { get; }
                Tensor Forward(Tensor x) => x.Apply(Blocks{|CNET0014:[2]|});
            }
            """, block);
        // A loop over something else.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class M
            {
                [SubNetwork(2)] public partial B[] Blocks { get; }
                Tensor Forward(Tensor x)
                {
                    {|CNET0005:while (true) x = x.Apply(Blocks[0]);|}
                    return x;
                }
            }
            """, block);
        // A shape error inside the loop is reported once per copy it is found in: here the first.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class K
            {
                [Linear(4, 6)] public partial Linear Up { get; }
                [SubNetwork(2)] public partial B[] Blocks { get; }
                Tensor Forward(Tensor x)
                {
                    x = x.Apply(Up);
                    foreach (var b in Blocks) x = x.Apply({|CNET0001:b|});
                    return x;
                }
            }
            """, block);
    }

    [Fact]
    public void ClassWeights_MustBeOnePerClass_AndNotNegative()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:CrossEntropyLoss(Weights = new[] { 1f, 2f })|}]
            public partial class N
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => x.Apply(Head);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:CrossEntropyLoss(Weights = new[] { 1f, -2f, 1f })|}]
            public partial class M
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor x) => x.Apply(Head);
            }
            """);
    }

    [Fact]
    public void MemoryBudget_OverrunIsAWarningAtTheAttribute_NamingTheParts()
    {
        const string body = """
            {
                [Conv2d(1, 64, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
                [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
                [Linear(128 * 7 * 7, 512)] public partial Linear Fc1 { get; }
                [Linear(512, 10)] public partial Linear Fc2 { get; }
                Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu().Apply(Conv2).MaxPool2d(2).Relu().Flatten().Apply(Fc1).Relu().Apply(Fc2);
            }
            """;
        // The seed ConvNet trains at batch 64 with AdamW in about 100 MiB: under 150, over 60.
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, MemoryBudget(150)]\npublic partial class A\n" + body);
        var d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, {|CNET0021:MemoryBudget(60)|}]\npublic partial class B\n" + body);
        string message = Message(d.Single());
        Assert.Matches(@"^B needs at least [0-9.]+ MiB to train with AdamW at batch 64 \(parameters 12\.6 MiB, gradients 12\.6 MiB, AdamW state 25\.1 MiB, activations [0-9.]+ MiB, their gradients [0-9.]+ MiB, max-pool indices 4\.59 MiB; the kernels' scratch comes on top\), over its budget of 60 MiB; the largest regions: Conv1's output \[64, 28, 28\] with its gradient 24\.5 MiB; Conv2's output \[128, 14, 14\] with its gradient 12\.3 MiB", message);
        Assert.Equal(Microsoft.CodeAnalysis.DiagnosticSeverity.Warning, d.Single().Severity);
        // Inference at batch 1 fits easily; SGD's missing state makes the difference at a tight budget.
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, MemoryBudget(30, Batch = 1, Training = false)]\npublic partial class C\n" + body);
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, {|CNET0021:MemoryBudget(80, Optimizer = OptimizerKind.Adam)|}]\npublic partial class E\n" + body);
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, MemoryBudget(80, Optimizer = OptimizerKind.Sgd)]\npublic partial class F\n" + body);
        // A budget that is no amount is CNET0014.
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(1, 28, 28), CrossEntropyLoss, {|CNET0014:MemoryBudget(0)|}]\npublic partial class G\n" + body);
    }

    [Fact]
    public void ChunkAndSplit_CutAsPyTorch_WithErrorsAtTheArgument()
    {
        // torch.chunk(6 features, 4) gives 3 pieces of 2: deconstructing 4 is reported at the left side, with the pieces.
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(6), CrossEntropyLoss]
            public partial class A
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    {|CNET0014:var (a, b, c, e)|} = x.Chunk(4, -1);
                    return a.Apply(Fc);
                }
            }
            """);
        Assert.Equal("Chunk: x.Chunk(4, -1) gives 3 pieces ([2], [2], [2]), but 4 are deconstructed", Message(d.Single()));
        // Sections that do not add up, at the sizes; an index past the pieces, at the index; the batch, at the dimension.
        d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(6), CrossEntropyLoss]
            public partial class B
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x)
                {
                    var (a, b) = x.Split({|CNET0014:[2, 3]|}, 1);
                    return a.Apply(Fc);
                }
            }
            """);
        Assert.Equal("Split: sizes (2, 3) must be positive and add up to dimension 1 of [B, 6], which has 6", Message(d.Single()));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(6), CrossEntropyLoss]
            public partial class C
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Split(2, -1){|CNET0014:[3]|}.Apply(Fc);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(6), CrossEntropyLoss]
            public partial class E
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) { var (a, b) = x.Chunk(2, {|CNET0014:0|}); return a.Apply(Fc); }
            }
            """);
        // The pieces' shapes flow on: a head wired for the whole width is CNET0001 at its argument.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(8), CrossEntropyLoss]
            public partial class F
            {
                [Linear({|CNET0001:8|}, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) { var (a, b) = x.Chunk(2, -1); return (a * b).Apply(Fc); }
            }
            """);
    }

    [Fact]
    public void CustomLoss_IsAMethodOfTheClass_CompiledLikeForward()
    {
        // Fine: a loss method over the output and the targets.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CustomLoss(nameof(L))]
            public partial class A
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
                public Tensor L(Tensor output, Tensor target) { var d = output - target; return (d * d).Mean(); }
            }
            """);
        // No such method, at the attribute.
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:CustomLoss("Huber")|}]
            public partial class B
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        Assert.Equal("CustomLoss: B has no method 'Tensor Huber(Tensor output, Tensor target)' to compile as its loss", Message(d.Single()));
        // The loss method is checked as Forward is: shapes that do not broadcast, a layer (the network's alone).
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CustomLoss(nameof(L))]
            public partial class C
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
                public Tensor L(Tensor output, Tensor target) => {|CNET0005:output.Apply(Fc)|} - target;
            }
            """);
    }

    [Fact]
    public void CustomLossOnClassIndices_ReadsTheLabelsThroughOneHot()
    {
        // Fine: the labels become targets shaped like the logits.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CustomLoss(nameof(L), ClassIndices = true)]
            public partial class A
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
                public Tensor L(Tensor logits, Tensor labels) => 0f - (logits.LogSoftmax() * labels.OneHot(3)).Sum(-1);
            }
            """);
        // Labels are integers: arithmetic on them is refused at the call, a OneHot of the wrong width at the product.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CustomLoss(nameof(L), ClassIndices = true)]
            public partial class B
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
                public Tensor L(Tensor logits, Tensor labels) => {|CNET0005:labels.Tanh()|};
            }
            """);
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CustomLoss(nameof(L), ClassIndices = true)]
            public partial class C
            {
                [Linear(4, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
                public Tensor L(Tensor logits, Tensor labels) => ({|CNET0019:logits * labels.OneHot(4)|}).Sum(-1);
            }
            """);
        Assert.StartsWith("Cannot multiply [3] (left, from logits) and [4] (right, from labels.OneHot(4))", Message(d.Single()));
    }

    [Fact]
    public void CustomLossAmongSeveralOutputs_NamesItsOutput()
    {
        const string body = """
            {
                [Linear(4, 3)] public partial Linear A { get; }
                [Linear(4, 2)] public partial Linear B { get; }
                (Tensor a, Tensor b) Forward(Tensor x) => (x.Apply(A), x.Apply(B));
                public Tensor L(Tensor output, Tensor target) { var d = output - target; return d * d; }
            }
            """;
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), CrossEntropyLoss(Output = \"a\"), CustomLoss(nameof(L), Output = \"b\", Weight = 0.5f)]\npublic partial class P\n" + body);
        var d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), CrossEntropyLoss(Output = \"a\"), {|CNET0014:CustomLoss(nameof(L))|}]\npublic partial class Q\n" + body);
        Assert.StartsWith("CustomLoss: Forward returns several outputs (a, b); name the one this loss trains", Message(d.Single()));
    }

    [Fact]
    public void ConvTranspose2d_ChecksItsChannelsAndOutputPadding()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, 5, 5), CrossEntropyLoss]
            public partial class A
            {
                [ConvTranspose2d({|CNET0001:3|}, 2, 2, stride: 2)] public partial ConvTranspose2d Up { get; }
                [Linear(2 * 10 * 10, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Up).Flatten().Apply(Fc);
            }
            """);
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, 5, 5), CrossEntropyLoss]
            public partial class B
            {
                [ConvTranspose2d(4, 2, 3, stride: 2, padding: 1, outputPadding: {|CNET0014:2|})] public partial ConvTranspose2d Up { get; }
                [Linear(2 * 10 * 10, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Up).Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("Up: outputPadding 2 must be below the stride 2", Message(d.Single()));
        // The output size follows PyTorch's formula: (5 − 1)·2 − 2 + 2 + 1 + 1 = 10, so a Linear of 2·9·9 is wrong at its argument.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, 5, 5), CrossEntropyLoss]
            public partial class C
            {
                [ConvTranspose2d(4, 2, 3, stride: 2, padding: 1, outputPadding: 1)] public partial ConvTranspose2d Up { get; }
                [Linear({|CNET0001:2 * 9 * 9|}, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Up).Flatten().Apply(Fc);
            }
            """);
    }

    [Fact]
    public void ReshapeAndView_TakeTheBatchFirst_AndHoldASample()
    {
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(12), CrossEntropyLoss]
            public partial class A
            {
                [Linear(16, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.View{|CNET0014:(-1, 4, 4)|}.Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("View: a sample of [B, 12] has 12 values, but [4, 4] holds 16", Message(d.Single()));
        d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(12), CrossEntropyLoss]
            public partial class B
            {
                [Linear(12, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Reshape({|CNET0014:4|}, 3).Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("Reshape: the first size is the batch, -1 (as x.view(-1, …)), and a sample's sizes follow", Message(d.Single()));
        // A reshape that holds the sample moves the mismatch to the layer that reads it.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(12), CrossEntropyLoss]
            public partial class C
            {
                [Linear({|CNET0001:12|}, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Reshape(-1, 3, 4).Apply(Fc);
            }
            """);
    }

    [Fact]
    public void SumMeanAndOneHot_AreCheckedAtTheirArguments()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(2, 3), CrossEntropyLoss]
            public partial class A
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Sum({|CNET0014:0|}).Apply(Fc);
            }
            """);
        var d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(2, 3), CrossEntropyLoss]
            public partial class B
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Mean({|CNET0014:3|}).Apply(Fc);
            }
            """);
        Assert.Equal("Mean: dimension 3 is outside [B, 2, 3]", Message(d.Single()));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(2, 3), CrossEntropyLoss]
            public partial class C
            {
                [Linear(2, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0005:x.Mean()|}.Apply(Fc);
            }
            """);
        // Sum(1) of [2, 3] is [3]: the Linear reading 2 features is wrong at its argument.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(2, 3), CrossEntropyLoss]
            public partial class D
            {
                [Linear({|CNET0001:2|}, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Sum(1).Apply(Fc);
            }
            """);
        d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), CrossEntropyLoss]
            public partial class E
            {
                [Linear(12, 3)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => {|CNET0014:x.OneHot(3)|}.Flatten().Apply(Fc);
            }
            """);
        Assert.Equal("OneHot: it reads integers (a loss method's class indices or token ids), and this value holds floats", Message(d.Single()));
    }

    [Fact]
    public void CosineEmbeddingLoss_ComparesTwoOutputsOfOneShape()
    {
        const string body = """
            {
                [Linear(4, 8)] public partial Linear A { get; }
                [Linear(4, 6)] public partial Linear B { get; }
                (Tensor a, Tensor b, Tensor c) Forward(Tensor x) => (x.Apply(A), x.Apply(A).Tanh(), x.Apply(B));
            }
            """;
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), CosineEmbeddingLoss(Output = \"a\", Second = \"b\")]\npublic partial class P\n" + body);
        var d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), {|CNET0014:CosineEmbeddingLoss(Output = \"a\", Second = \"c\")|}]\npublic partial class Q\n" + body);
        Assert.Equal("CosineEmbeddingLoss: 'a' is 8 but 'c' is 6; the two embeddings must have one shape", Message(d.Single()));
        d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), {|CNET0014:CosineEmbeddingLoss(Output = \"a\")|}]\npublic partial class R\n" + body);
        Assert.StartsWith("CosineEmbeddingLoss: name the output compared with 'a' with Second", Message(d.Single()));
        // With one output there is nothing to compare.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:CosineEmbeddingLoss|}]
            public partial class S
            {
                [Linear(4, 8)] public partial Linear A { get; }
                Tensor Forward(Tensor x) => x.Apply(A);
            }
            """);
    }

    [Fact]
    public void SeveralOutputs_EachLossNamesItsOutput()
    {
        const string body = """
            {
                [Linear(4, 16)] public partial Linear Trunk { get; }
                [Linear(16, 3)] public partial Linear Classes { get; }
                [Linear(16, 4)] public partial Linear Box { get; }
                (Tensor digit, Tensor box) Forward(Tensor x) { var h = x.Apply(Trunk).Relu(); return (h.Apply(Classes), h.Apply(Box)); }
            }
            """;
        // Fine: each output its loss, or an output without one.
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), CrossEntropyLoss(Output = \"digit\"), MSELoss(Output = \"box\", Weight = 0.5f)]\npublic partial class A\n" + body);
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), MSELoss(Output = \"box\")]\npublic partial class B\n" + body);
        // A loss that names no output, an output that does not exist, two losses on one output, a negative weight.
        var d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), {|CNET0014:CrossEntropyLoss|}]\npublic partial class C\n" + body);
        Assert.Equal("CrossEntropyLoss: Forward returns several outputs (digit, box); name the one this loss trains with Output = \"…\"", Message(d.Single()));
        d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), {|CNET0014:CrossEntropyLoss(Output = \"digits\")|}]\npublic partial class D\n" + body);
        Assert.Equal("CrossEntropyLoss: Output = \"digits\" names no output of Forward; its outputs are digit, box", Message(d.Single()));
        d = GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), MSELoss(Output = \"box\"), {|CNET0014:L1Loss(Output = \"box\")|}]\npublic partial class E\n" + body);
        Assert.Equal("L1Loss: output 'box' already has a loss (MSELoss); each output takes one", Message(d.Single()));
        GeneratorHarness.AssertDiagnostics(Usings + "[Network, Input(4), {|CNET0014:MSELoss(Output = \"box\", Weight = -1f)|}]\npublic partial class F\n" + body);
        // A loss that does not fit its output is reported at that loss: cross-entropy on a [T, 3] output.
        d = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 4, MaxSequence = 8), {|CNET0016:CrossEntropyLoss(Output = "tags")|}, MSELoss(Output = "score")]
            public partial class G
            {
                [Linear(4, 3)] public partial Linear Tag { get; }
                [Linear(4, 1)] public partial Linear Score { get; }
                (Tensor tags, Tensor score) Forward(Tensor x) => (x.Apply(Tag), x.MeanOverSequence().Apply(Score));
            }
            """);
        Assert.Equal("CrossEntropyLoss needs class logits [K] per sample, but Forward returns T×3", Message(d.Single()));
        // An output named as an input, and an input returned as it came in.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), MSELoss(Output = "y")]
            public partial class H
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                (Tensor y, Tensor x) Forward(Tensor x) => (x.Apply(Fc), {|CNET0014:x.Flatten()|});
            }
            """);
        // With one output, Output and Weight mean nothing: reported, as is a second loss.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:MSELoss(Output = "y")|}]
            public partial class J
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4), {|CNET0014:MSELoss(Weight = 2f)|}]
            public partial class K
            {
                [Linear(4, 2)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
    }

    [Fact]
    public void SeveralInputs_BindToForwardsParametersByName()
    {
        // A branch wired for the wrong width is reported at its argument, naming the input it reads.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input("image", 1, 8, 8), Input("meta", 4), CrossEntropyLoss]
            public partial class N
            {
                [Linear(64, 3)] public partial Linear Image { get; }
                [Linear({|CNET0001:5|}, 3)] public partial Linear Meta { get; }
                Tensor Forward(Tensor image, Tensor meta) => image.Flatten().Apply(Image) + meta.Apply(Meta);
            }
            """);
        // A parameter that names no input.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input("image", 1, 8, 8), Input("meta", 4), CrossEntropyLoss]
            public partial class M
            {
                [Linear(64, 3)] public partial Linear Image { get; }
                Tensor Forward(Tensor image, Tensor {|CNET0010:extra|}) => image.Flatten().Apply(Image);
            }
            """);
        // Forward with the wrong number of parameters.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input("image", 1, 8, 8), Input("meta", 4), CrossEntropyLoss]
            public partial class {|CNET0010:K|}
            {
                [Linear(64, 3)] public partial Linear Image { get; }
                Tensor Forward(Tensor image) => image.Flatten().Apply(Image);
            }
            """);
        // Two inputs of one name, and sequence inputs that disagree on their bound.
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input("a", 4), {|CNET0014:Input("a", 4)|}, CrossEntropyLoss]
            public partial class J
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor a, Tensor b) => a.Apply(Head);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input("a", Dim.Sequence, 4, MaxSequence = 8), {|CNET0014:Input("b", Dim.Sequence, 4, MaxSequence = 9)|}, CrossEntropyLoss]
            public partial class H
            {
                [Linear(4, 3)] public partial Linear Head { get; }
                Tensor Forward(Tensor a, Tensor b) => (a + b).MeanOverSequence().Apply(Head);
            }
            """);
    }

    [Fact]
    public void PositionEmbedding_TooFewPositionsForMaxSequence_IsCNET0014OnCount()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 64)]
            public partial class N
            {
                [Embedding(100, 8)] public partial Embedding Words { get; }
                [PositionEmbedding({|CNET0014:32|}, 8)] public partial PositionEmbedding Positions { get; }
                Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Positions);
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 64)]
            public partial class M
            {
                [Embedding(100, 8)] public partial Embedding Words { get; }
                [TokenTypeEmbedding(2, {|CNET0001:6|})] public partial TokenTypeEmbedding Types { get; }
                Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Types);
            }
            """);
    }

    [Fact]
    public void CNET0015_MissingInput_OnANetworkWithALoss()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, MSELoss]
            public partial class {|CNET0015:N|}
            {
                Tensor Forward(Tensor x) => x;
            }
            """);
        // Without a loss it is a block: its shape comes from the networks that apply it.
        var (diags, sources, output) = GeneratorHarness.Run(Usings + """
            [Network]
            public partial class Block
            {
                [Linear(4, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc).Relu();
            }
            """);
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        Assert.Contains("partial class Block : global::Compiled.Nets.ILayer", Assert.Single(sources).Text);
    }

    private const string WidthBlock = """
        [Network]
        public partial class Widen
        {
            private const int In = BlockArg.A, Out = BlockArg.B;
            [Conv2d(In, Out, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
            Tensor Forward(Tensor x) => x.Apply(Conv).Relu();
        }
        """;

    [Fact]
    public void BlockArguments_SizeEachApplication_AndPassThroughAnEnclosingBlock()
    {
        var (diags, sources, output) = GeneratorHarness.Run(Usings + WidthBlock + """
            [Network]
            public partial class Stage
            {
                private const int Width = BlockArg.A;
                [SubNetwork(Args = new[] { Width, Width })] public partial Widen Same { get; }
                Tensor Forward(Tensor x) => x.Apply(Same);
            }
            [Network, Input(3, 6, 6), MSELoss]
            public partial class N
            {
                [SubNetwork(Args = new[] { 3, 5 })] public partial Widen First { get; }
                [SubNetwork(Args = new[] { 5 })] public partial Stage Then { get; }
                Tensor Forward(Tensor x) => x.Apply(First).Apply(Then);
            }
            """);
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        var network = sources.Single(s => s.Hint == "N.g.cs").Text;
        Assert.Contains("b.Add(prefix + \"first.conv.weight\", new int[] { 5, 3, 3, 3 }", network);
        Assert.Contains("b.Add(prefix + \"then.same.conv.weight\", new int[] { 5, 5, 3, 3 }", network);
        Assert.Contains("new global::Widen(_store, prefix + \"first.\", 3, 5)", network);
        // The blocks bind with the arguments they are given.
        Assert.Contains("new global::Widen(_store, prefix + \"same.\", _args[0], _args[0])", sources.Single(s => s.Hint == "Stage.g.cs").Text);
        Assert.Contains("new global::Compiled.Nets.Conv2d(_store, prefix + \"conv\", _args[0], _args[1], 3, 1, 1, 1, true)", sources.Single(s => s.Hint == "Widen.g.cs").Text);
    }

    [Fact]
    public void BlockArguments_MissingOrInArithmetic_AreReported()
    {
        var missing = GeneratorHarness.AssertDiagnostics(Usings + WidthBlock + """
            [Network, Input(3, 6, 6)]
            public partial class N
            {
                [SubNetwork(Args = new[] { 3 })] public partial Widen {|CNET0014:First|} { get; }
                Tensor Forward(Tensor x) => x.Apply(First);
            }
            """);
        Assert.Contains("Conv uses BlockArg.B, but [SubNetwork] gives 1 block argument: write [SubNetwork(Args = new[] { … })] with at least 2",
            missing[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network]
            public partial class Twice
            {
                [Linear({|CNET0014:BlockArg.A * 2|}, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        var inNetwork = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class Root
            {
                [Linear({|CNET0014:BlockArg.A|}, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            """);
        Assert.Contains("BlockArg.A is a block's argument", inNetwork[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void ABlockWithArguments_AppliedToTheWrongShape_IsReportedWithTheArgumentsValues_AndNoFix()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network]
            public partial class Widen
            {
                private const int In = BlockArg.A, Out = BlockArg.B;
                [Conv2d({|CNET0001:In|}, Out, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
                Tensor Forward(Tensor x) => x.Apply(Conv).Relu();
            }
            [Network, Input(3, 6, 6)]
            public partial class N
            {
                [SubNetwork(Args = new[] { 4, 5 })] public partial Widen First { get; }
                Tensor Forward(Tensor x) => x.Apply(First);
            }
            """);
        Assert.Contains("Conv expects 4 input channels (Conv2d(4, 5))", diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.False(diags[0].Properties.ContainsKey("Replacement"));
    }

    [Fact]
    public void ABlockAppliedToTheWrongShape_IsReportedAtItsLayer()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network]
            public partial class Block
            {
                [Linear({|CNET0001:4|}, 4)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc).Relu();
            }
            [Network, Input(6)]
            public partial class N
            {
                [SubNetwork] public partial Block B { get; }
                Tensor Forward(Tensor x) => x.Apply(B);
            }
            """);
        Assert.Contains("Fc expects 4 input features (Linear(4, 4)), but the input produces 6", diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CNET0016_CrossEntropyNeedsVectorOutput()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(1, 4, 4), CrossEntropyLoss]
            public partial class {|CNET0016:N|}
            {
                Tensor Forward(Tensor x) => x.Relu();
            }
            """);
    }

    [Fact]
    public void SubNetworkInputMismatch_IsReportedAtTheApply()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(8)]
            public partial class Block
            {
                [Linear(8, 8)] public partial Linear Fc { get; }
                Tensor Forward(Tensor x) => x.Apply(Fc);
            }
            [Network, Input(4)]
            public partial class Outer
            {
                [SubNetwork] public partial Block Inner { get; }
                Tensor Forward(Tensor x) => x.Apply({|CNET0001:Inner|});
            }
            """);
    }

    [Fact]
    public void TokenIds_FeedOnlyAnEmbedding_AndEmbeddingNeedsTokenIds()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4)]
            public partial class N
            {
                [Embedding(10, 3)] public partial Embedding E { get; }
                Tensor Forward(Tensor x) => {|CNET0011:x.Apply(E)|};
            }
            """);
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(4, Kind = InputKind.TokenIds)]
            public partial class N
            {
                Tensor Forward(Tensor x) => {|CNET0005:x.Relu()|};
            }
            """);
    }

    [Fact]
    public void CNET0017_FlattenOfTheSequenceDimension()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 32), CrossEntropyLoss]
            public partial class N
            {
                [Embedding(100, 8)] public partial Embedding E { get; }
                [Linear(8 * 32, 2)] public partial Linear Head { get; }
                Tensor Forward(Tensor ids) => {|CNET0017:ids.Apply(E).Flatten()|}.Apply(Head);
            }
            """);
        Assert.Equal("Flatten cannot take the sequence dimension T: the flattened size would depend on the sequence length; reduce T first with SelectToken(i) or MeanOverSequence() (its input is T×8 for input T)",
            diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CNET0017_LogSoftmaxOverT_WhileSoftmaxSumAndMeanOverTCompile()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 32), CrossEntropyLoss]
            public partial class A
            {
                [Embedding(100, 8)] public partial Embedding E { get; }
                [Linear(8, 2)] public partial Linear Head { get; }
                Tensor Forward(Tensor ids) { var h = ids.Apply(E); return (h * h.Softmax(1)).Sum(1).Apply(Head) + h.Mean(1).Apply(Head); }
            }
            """);
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 32), CrossEntropyLoss]
            public partial class B
            {
                [Embedding(100, 8)] public partial Embedding E { get; }
                [Linear(8, 2)] public partial Linear Head { get; }
                Tensor Forward(Tensor ids) => {|CNET0017:ids.Apply(E).LogSoftmax(1)|}.Sum(1).Apply(Head);
            }
            """);
        Assert.StartsWith("LogSoftmax cannot take the sequence dimension T: a log-softmax over T would be −∞ at padding",
            diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CNET0017_ConvolutionAndLinearOverT()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 4, 4, MaxSequence = 8)]
            public partial class A
            {
                [Conv2d(1, 2, kernel: 3)] public partial Conv2d C { get; }
                Tensor Forward(Tensor x) => {|CNET0017:x.Apply(C)|};
            }

            [Network, {|CNET0014:Input(4, Dim.Sequence)|}]
            public partial class B
            {
                Tensor Forward(Tensor x) => x.Relu();
            }
            """);
    }

    [Fact]
    public void SequenceShapes_AreNamedWithT_InFeatureMismatches()
    {
        var diags = GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, Kind = InputKind.TokenIds), CrossEntropyLoss]
            public partial class N
            {
                [Embedding(100, 16)] public partial Embedding E { get; }
                [Linear({|CNET0001:32|}, 2)] public partial Linear Head { get; }
                Tensor Forward(Tensor ids) => ids.Apply(E).SelectToken(0).Apply(Head);
            }
            """);
        Assert.Contains("but SelectToken produces 16 for input T", diags[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void SelectToken_BeyondMaxSequence_AndCrossEntropyOverT_AreErrors()
    {
        GeneratorHarness.AssertDiagnostics(Usings + """
            [Network, Input(Dim.Sequence, 4, MaxSequence = 8)]
            public partial class A
            {
                Tensor Forward(Tensor x) => x.SelectToken({|CNET0014:8|});
            }

            [Network, Input(Dim.Sequence), CrossEntropyLoss]
            public partial class {|CNET0016:B|}
            {
                Tensor Forward(Tensor x) => x.Relu();
            }
            """);
    }
}
